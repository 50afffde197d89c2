//! torchvision's Vision Transformer (`torchvision.models.vision_transformer`):
//! vit_b_16, vit_b_32, vit_l_16, vit_l_32, vit_h_14. Patch size, hidden
//! size, layers and MLP size are read from the weights, the image size from
//! the position embedding (it is part of the weights: the input size is
//! fixed), the classes from `heads.head`. The number of attention heads is
//! not in the weights: torchvision's value for the hidden size (12 for 768,
//! 16 for 1024 and 1280), or `--set num_heads=N`.

use super::read::{count, dim};
use super::{Family, Model, Settings};
use crate::emit::{Conv, Emit, join};
use crate::error::ExportError;
use crate::source::StateDict;

/// The family entry of the registry.
pub const FAMILY: Family = Family {
    name: "vit",
    variants: &["vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32", "vit_h_14"],
    settings: &["num_heads"],
    guess,
};

/// (name, patch, layers, hidden, heads, mlp)
const TABLE: [(&str, u64, usize, u64, u64, u64); 5] = [
    ("vit_b_16", 16, 12, 768, 12, 3072),
    ("vit_b_32", 32, 12, 768, 12, 3072),
    ("vit_l_16", 16, 24, 1024, 16, 4096),
    ("vit_l_32", 32, 24, 1024, 16, 4096),
    ("vit_h_14", 14, 32, 1280, 16, 5120),
];

/// A ViT with its hyper-parameters.
#[derive(Debug, Clone)]
pub struct Vit {
    patch: u64,
    layers: usize,
    hidden: u64,
    heads: u64,
    mlp: u64,
    image: u64,
    classes: u64,
}

fn guess(
    sd: &StateDict,
    variant: Option<&str>,
    settings: &Settings,
) -> Result<Box<dyn Model>, ExportError> {
    let classes = dim(sd, "heads.head.weight", 0).unwrap_or(1000);
    let row = match variant {
        Some(v) => TABLE.iter().find(|t| t.0 == v).copied(),
        None => None,
    };
    let (patch, layers, hidden, heads, mlp) = match row {
        Some(r) => (r.1, r.2, r.3, r.4, r.5),
        None => {
            let hidden = dim(sd, "conv_proj.weight", 0).unwrap_or(768);
            let heads = TABLE.iter().find(|t| t.3 == hidden).map_or(12, |t| t.4);
            (
                dim(sd, "conv_proj.weight", 2).unwrap_or(16),
                count(sd, "encoder.layers.encoder_layer_", 0).max(1),
                hidden,
                heads,
                dim(sd, "encoder.layers.encoder_layer_0.mlp.0.weight", 0).unwrap_or(4 * hidden),
            )
        }
    };
    let heads = match settings.number("num_heads")? {
        Some(h) => h,
        None => heads,
    };
    // seq = (image / patch)^2 + 1
    let seq = dim(sd, "encoder.pos_embedding", 1).unwrap_or(197);
    let side = (seq.saturating_sub(1) as f64).sqrt().round() as u64;
    Ok(Box::new(Vit {
        patch,
        layers,
        hidden,
        heads,
        mlp,
        image: side * patch,
        classes,
    }))
}

const EPS: f32 = 1e-6;

impl Vit {
    fn attention(
        &self,
        e: &mut Emit<'_>,
        at: &str,
        x: &str,
        seq: i64,
    ) -> Result<String, ExportError> {
        let (h, nh) = (self.hidden, self.heads.max(1));
        let d = (h / nh) as i64;
        let w = e.param(&join(at, "in_proj_weight"), &[3 * h, h])?;
        let b = e.param(&join(at, "in_proj_bias"), &[3 * h])?;
        let wt = e.transpose(at, &w, &[1, 0])?;
        let qkv = e.matmul(at, x, &wt)?;
        let qkv = e.add(at, &qkv, &b)?;
        let qkv = e.reshape(at, &qkv, &[0, seq, 3, nh as i64, d])?;
        let qkv = e.transpose(at, &qkv, &[2, 0, 3, 1, 4])?;
        let q = e.gather(at, &qkv, 0, 0)?;
        let k = e.gather(at, &qkv, 1, 0)?;
        let v = e.gather(at, &qkv, 2, 0)?;
        let scale = e.const_f32(at, 1.0 / (d as f32).sqrt())?;
        let q = e.mul(at, &q, &scale)?;
        let kt = e.transpose(at, &k, &[0, 1, 3, 2])?;
        let s = e.matmul(at, &q, &kt)?;
        let p = e.softmax_last(at, &s)?;
        let o = e.matmul(at, &p, &v)?;
        let o = e.transpose(at, &o, &[0, 2, 1, 3])?;
        let o = e.reshape(at, &o, &[0, seq, h as i64])?;
        e.linear_nd(&join(at, "out_proj"), &o, h, h)
    }
}

impl Model for Vit {
    fn family(&self) -> &'static str {
        "vit"
    }

    fn variant(&self) -> String {
        let key = (self.patch, self.layers, self.hidden, self.heads, self.mlp);
        match TABLE.iter().find(|t| (t.1, t.2, t.3, t.4, t.5) == key) {
            Some(t) => t.0.to_string(),
            None => format!(
                "vit (patch {}, layers {}, hidden {}, heads {}, mlp {})",
                self.patch, self.layers, self.hidden, self.heads, self.mlp
            ),
        }
    }

    fn classes(&self) -> u64 {
        self.classes
    }

    fn default_input(&self) -> (u64, u64) {
        (self.image, self.image)
    }

    fn fixed_input(&self) -> bool {
        true
    }

    fn forward(&self, e: &mut Emit<'_>, x: &str, _: (u64, u64)) -> Result<String, ExportError> {
        let (h, p) = (self.hidden, self.patch);
        let side = self.image / p.max(1);
        let tokens = (side * side) as i64;
        let seq = tokens + 1;
        let y = e.conv2d("conv_proj", x, Conv::new(3, h, p, p, 0).bias())?;
        let y = e.reshape("", &y, &[0, h as i64, tokens])?;
        let y = e.transpose("", &y, &[0, 2, 1])?;
        // class_token.expand(n, -1, -1): the batch size from the input's shape.
        let cls = e.param("class_token", &[1, 1, h])?;
        let shape = e.op("", "Shape", &[x], vec![])?;
        let idx = e.const_i64("", &[0])?;
        let n = e.op(
            "",
            "Gather",
            &[&shape, &idx],
            vec![("axis", netport_onnx::build::Attr::Int(0))],
        )?;
        let rest = e.const_i64("", &[1, h as i64])?;
        let target = e.concat("", &[&n, &rest], 0)?;
        let cls = e.op("", "Expand", &[&cls, &target], vec![])?;
        let y = e.concat("", &[&cls, &y], 1)?;
        let pos = e.param("encoder.pos_embedding", &[1, seq as u64, h])?;
        let mut y = e.add("encoder", &y, &pos)?;
        for i in 0..self.layers {
            let at = format!("encoder.layers.encoder_layer_{i}");
            let z = e.layer_norm(&join(&at, "ln_1"), &y, h, EPS)?;
            let z = self.attention(e, &join(&at, "self_attention"), &z, seq)?;
            let x1 = e.add(&at, &z, &y)?;
            let z = e.layer_norm(&join(&at, "ln_2"), &x1, h, EPS)?;
            let z = e.linear_nd(&join(&at, "mlp.0"), &z, h, self.mlp)?;
            let z = e.gelu(&join(&at, "mlp.1"), &z)?;
            let z = e.linear_nd(&join(&at, "mlp.3"), &z, self.mlp, h)?;
            y = e.add(&at, &x1, &z)?;
        }
        let y = e.layer_norm("encoder.ln", &y, h, EPS)?;
        let y = e.gather("", &y, 0, 1)?;
        e.linear("heads.head", &y, h, self.classes)
    }
}

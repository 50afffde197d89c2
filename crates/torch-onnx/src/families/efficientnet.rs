//! torchvision's EfficientNet b0-b7 and v2 s/m/l
//! (`torchvision.models.efficientnet`): the variant is the one whose stem
//! width and blocks per stage equal the file's; BatchNorm's epsilon follows
//! the variant (1e-5 for b0-b4, 1e-3 for b5-b7 and v2), the classes are read
//! from `classifier.1`.

use super::blocks::{Act, conv_norm_act, make_divisible, squeeze_excitation};
use super::read::{count, dim};
use super::{Family, Model, Settings};
use crate::emit::{Emit, join};
use crate::error::ExportError;
use crate::source::StateDict;

/// The family entry of the registry.
pub const FAMILY: Family = Family {
    name: "efficientnet",
    variants: &[
        "efficientnet_b0",
        "efficientnet_b1",
        "efficientnet_b2",
        "efficientnet_b3",
        "efficientnet_b4",
        "efficientnet_b5",
        "efficientnet_b6",
        "efficientnet_b7",
        "efficientnet_v2_s",
        "efficientnet_v2_m",
        "efficientnet_v2_l",
    ],
    settings: &[],
    guess,
};

/// One stage: fused, expand ratio, kernel, stride, in, out, blocks.
#[derive(Debug, Clone, Copy)]
struct Stage {
    fused: bool,
    expand: u64,
    k: u64,
    stride: u64,
    cin: u64,
    cout: u64,
    n: usize,
}

const fn mb(expand: u64, k: u64, stride: u64, cin: u64, cout: u64, n: usize) -> Stage {
    Stage {
        fused: false,
        expand,
        k,
        stride,
        cin,
        cout,
        n,
    }
}

const fn fused(expand: u64, k: u64, stride: u64, cin: u64, cout: u64, n: usize) -> Stage {
    Stage {
        fused: true,
        ..mb(expand, k, stride, cin, cout, n)
    }
}

const B: [Stage; 7] = [
    mb(1, 3, 1, 32, 16, 1),
    mb(6, 3, 2, 16, 24, 2),
    mb(6, 5, 2, 24, 40, 2),
    mb(6, 3, 2, 40, 80, 3),
    mb(6, 5, 1, 80, 112, 3),
    mb(6, 5, 2, 112, 192, 4),
    mb(6, 3, 1, 192, 320, 1),
];

const V2_S: &[Stage] = &[
    fused(1, 3, 1, 24, 24, 2),
    fused(4, 3, 2, 24, 48, 4),
    fused(4, 3, 2, 48, 64, 4),
    mb(4, 3, 2, 64, 128, 6),
    mb(6, 3, 1, 128, 160, 9),
    mb(6, 3, 2, 160, 256, 15),
];

const V2_M: &[Stage] = &[
    fused(1, 3, 1, 24, 24, 3),
    fused(4, 3, 2, 24, 48, 5),
    fused(4, 3, 2, 48, 80, 5),
    mb(4, 3, 2, 80, 160, 7),
    mb(6, 3, 1, 160, 176, 14),
    mb(6, 3, 2, 176, 304, 18),
    mb(6, 3, 1, 304, 512, 5),
];

const V2_L: &[Stage] = &[
    fused(1, 3, 1, 32, 32, 4),
    fused(4, 3, 2, 32, 64, 7),
    fused(4, 3, 2, 64, 96, 7),
    mb(4, 3, 2, 96, 192, 10),
    mb(6, 3, 1, 192, 224, 19),
    mb(6, 3, 2, 224, 384, 25),
    mb(6, 3, 1, 384, 640, 7),
];

/// (name, width, depth) of the b variants.
const B_MULTS: [(&str, f64, f64); 8] = [
    ("efficientnet_b0", 1.0, 1.0),
    ("efficientnet_b1", 1.0, 1.1),
    ("efficientnet_b2", 1.1, 1.2),
    ("efficientnet_b3", 1.2, 1.4),
    ("efficientnet_b4", 1.4, 1.8),
    ("efficientnet_b5", 1.6, 2.2),
    ("efficientnet_b6", 1.8, 2.6),
    ("efficientnet_b7", 2.0, 3.1),
];

/// An EfficientNet variant: its stages after width and depth scaling.
#[derive(Debug, Clone)]
pub struct EfficientNet {
    name: &'static str,
    stages: Vec<Stage>,
    last: Option<u64>,
    eps: f32,
    classes: u64,
}

fn variant(name: &'static str, classes: u64) -> EfficientNet {
    if let Some(&(_, w, d)) = B_MULTS.iter().find(|b| b.0 == name) {
        let ch = |c: u64| make_divisible(c as f64 * w, 8);
        let stages = B
            .iter()
            .map(|s| Stage {
                cin: ch(s.cin),
                cout: ch(s.cout),
                n: (s.n as f64 * d).ceil() as usize,
                ..*s
            })
            .collect();
        let late = matches!(
            name,
            "efficientnet_b5" | "efficientnet_b6" | "efficientnet_b7"
        );
        return EfficientNet {
            name,
            stages,
            last: None,
            eps: if late { 1e-3 } else { 1e-5 },
            classes,
        };
    }
    let stages = match name {
        "efficientnet_v2_m" => V2_M,
        "efficientnet_v2_l" => V2_L,
        _ => V2_S,
    };
    EfficientNet {
        name,
        stages: stages.to_vec(),
        last: Some(1280),
        eps: 1e-3,
        classes,
    }
}

fn guess(sd: &StateDict, name: Option<&str>, _: &Settings) -> Result<Box<dyn Model>, ExportError> {
    let classes = dim(sd, "classifier.1.weight", 0).unwrap_or(1000);
    let stem = dim(sd, "features.0.0.weight", 0);
    let found = FAMILY.variants.iter().find(|v| match name {
        Some(n) => n == **v,
        None => {
            let m = variant(v, classes);
            Some(m.stages[0].cin) == stem
                && m.stages
                    .iter()
                    .enumerate()
                    .all(|(i, s)| count(sd, &format!("features.{}.", i + 1), 0) == s.n)
        }
    });
    Ok(Box::new(variant(
        found.copied().unwrap_or("efficientnet_b0"),
        classes,
    )))
}

impl Model for EfficientNet {
    fn family(&self) -> &'static str {
        "efficientnet"
    }

    fn variant(&self) -> String {
        self.name.to_string()
    }

    fn classes(&self) -> u64 {
        self.classes
    }

    fn forward(&self, e: &mut Emit<'_>, x: &str, _: (u64, u64)) -> Result<String, ExportError> {
        let eps = self.eps;
        let stem = self.stages[0].cin;
        let mut y = conv_norm_act(e, "features.0", x, 3, stem, 3, 2, 1, eps, Act::Silu)?;
        for (i, s) in self.stages.iter().enumerate() {
            for b in 0..s.n {
                let (cin, stride) = if b == 0 {
                    (s.cin, s.stride)
                } else {
                    (s.cout, 1)
                };
                let at = format!("features.{}.{b}.block", i + 1);
                let exp = make_divisible((cin * s.expand) as f64, 8);
                let mut z = y.clone();
                let mut j = 0;
                let mut idx = || {
                    j += 1;
                    join(&at, &(j - 1).to_string())
                };
                if s.fused {
                    if exp != cin {
                        z = conv_norm_act(e, &idx(), &z, cin, exp, s.k, stride, 1, eps, Act::Silu)?;
                        z = conv_norm_act(e, &idx(), &z, exp, s.cout, 1, 1, 1, eps, Act::None)?;
                    } else {
                        z = conv_norm_act(
                            e,
                            &idx(),
                            &z,
                            cin,
                            s.cout,
                            s.k,
                            stride,
                            1,
                            eps,
                            Act::Silu,
                        )?;
                    }
                } else {
                    if exp != cin {
                        z = conv_norm_act(e, &idx(), &z, cin, exp, 1, 1, 1, eps, Act::Silu)?;
                    }
                    z = conv_norm_act(e, &idx(), &z, exp, exp, s.k, stride, exp, eps, Act::Silu)?;
                    let sq = (cin / 4).max(1);
                    z = squeeze_excitation(e, &idx(), &z, exp, sq, Act::Silu, false)?;
                    z = conv_norm_act(e, &idx(), &z, exp, s.cout, 1, 1, 1, eps, Act::None)?;
                }
                y = if stride == 1 && cin == s.cout {
                    e.add(&format!("features.{}.{b}", i + 1), &z, &y)?
                } else {
                    z
                };
            }
        }
        let cin = self.stages[self.stages.len() - 1].cout;
        let last = self.last.unwrap_or(4 * cin);
        let at = format!("features.{}", self.stages.len() + 1);
        let y = conv_norm_act(e, &at, &y, cin, last, 1, 1, 1, eps, Act::Silu)?;
        let y = e.global_avg_pool("avgpool", &y)?;
        let y = e.flatten("", &y)?;
        e.linear("classifier.1", &y, last, self.classes)
    }
}

//! torchvision's VGG family: VGG 11/13/16/19, with and without BatchNorm
//! (`torchvision.models.vgg`). The configuration is read from the
//! convolutions in `features`, BatchNorm from `features.1`, the classes
//! from `classifier.6`.

use super::read::dim;
use super::{Family, Model, Settings};
use crate::emit::{Conv, Emit, conv_out};
use crate::error::ExportError;
use crate::source::StateDict;

/// The family entry of the registry.
pub const FAMILY: Family = Family {
    name: "vgg",
    variants: &[
        "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
    ],
    settings: &[],
    guess,
};

const M: u64 = 0;
const CFGS: &[(&str, &[u64])] = &[
    (
        "vgg11",
        &[64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M],
    ),
    (
        "vgg13",
        &[
            64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512, M,
        ],
    ),
    (
        "vgg16",
        &[
            64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M,
        ],
    ),
    (
        "vgg19",
        &[
            64, 64, M, 128, 128, M, 256, 256, 256, 256, M, 512, 512, 512, 512, M, 512, 512, 512,
            512, M,
        ],
    ),
];

/// A VGG with its configuration.
#[derive(Debug, Clone)]
pub struct Vgg {
    name: &'static str,
    cfg: &'static [u64],
    bn: bool,
    classes: u64,
}

/// The number of convolutions of each configuration tells them apart.
fn convs_in(sd: &StateDict) -> usize {
    sd.entries()
        .keys()
        .filter(|k| {
            k.starts_with("features.")
                && k.ends_with(".weight")
                && sd.shape(k).is_some_and(|s| s.len() == 4)
        })
        .count()
}

fn guess(
    sd: &StateDict,
    variant: Option<&str>,
    _: &Settings,
) -> Result<Box<dyn Model>, ExportError> {
    let classes = dim(sd, "classifier.6.weight", 0).unwrap_or(1000);
    let (base, bn) = match variant {
        Some(v) => (v.trim_end_matches("_bn"), v.ends_with("_bn")),
        None => {
            let convs = convs_in(sd);
            let base = CFGS
                .iter()
                .find(|(_, c)| c.iter().filter(|&&x| x != M).count() == convs)
                .map_or("vgg16", |c| c.0);
            (base, sd.has("features.1.running_mean"))
        }
    };
    let (name, cfg) = CFGS
        .iter()
        .find(|c| c.0 == base)
        .copied()
        .unwrap_or(CFGS[2]);
    Ok(Box::new(Vgg {
        name,
        cfg,
        bn,
        classes,
    }))
}

impl Model for Vgg {
    fn family(&self) -> &'static str {
        "vgg"
    }

    fn variant(&self) -> String {
        format!("{}{}", self.name, if self.bn { "_bn" } else { "" })
    }

    fn classes(&self) -> u64 {
        self.classes
    }

    fn forward(&self, e: &mut Emit<'_>, x: &str, size: (u64, u64)) -> Result<String, ExportError> {
        let (mut y, mut i, mut cin, mut hw) = (x.to_string(), 0, 3, size);
        for &v in self.cfg {
            if v == M {
                y = e.max_pool(&format!("features.{i}"), &y, 2, 2, 0, false, hw)?;
                hw = (conv_out(hw.0, 2, 2, 0, 1), conv_out(hw.1, 2, 2, 0, 1));
                i += 1;
                continue;
            }
            y = e.conv2d(
                &format!("features.{i}"),
                &y,
                Conv::new(cin, v, 3, 1, 1).bias(),
            )?;
            if self.bn {
                i += 1;
                y = e.batch_norm(&format!("features.{i}"), &y, v, 1e-5)?;
            }
            y = e.relu(&format!("features.{}", i + 1), &y)?;
            i += 2;
            cin = v;
        }
        let y = e.adaptive_avg_pool("avgpool", &y, hw, (7, 7))?;
        let y = e.flatten("", &y)?;
        let y = e.linear("classifier.0", &y, 512 * 49, 4096)?;
        let y = e.relu("classifier.1", &y)?;
        let y = e.linear("classifier.3", &y, 4096, 4096)?;
        let y = e.relu("classifier.4", &y)?;
        e.linear("classifier.6", &y, 4096, self.classes)
    }
}

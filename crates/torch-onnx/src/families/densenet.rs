//! torchvision's DenseNet 121/161/169/201 (`torchvision.models.densenet`):
//! growth rate, initial features, layers per block and bottleneck size are
//! read from the weights.

use super::read::{count, dim};
use super::{Family, Model, Settings};
use crate::emit::{Conv, Emit, join};
use crate::error::ExportError;
use crate::source::StateDict;

/// The family entry of the registry.
pub const FAMILY: Family = Family {
    name: "densenet",
    variants: &["densenet121", "densenet161", "densenet169", "densenet201"],
    settings: &[],
    guess,
};

/// (name, growth, blocks, init features)
const TABLE: &[(&str, u64, [usize; 4], u64)] = &[
    ("densenet121", 32, [6, 12, 24, 16], 64),
    ("densenet161", 48, [6, 12, 36, 24], 96),
    ("densenet169", 32, [6, 12, 32, 32], 64),
    ("densenet201", 32, [6, 12, 48, 32], 64),
];

/// A DenseNet with its hyper-parameters.
#[derive(Debug, Clone)]
pub struct DenseNet {
    growth: u64,
    blocks: [usize; 4],
    init: u64,
    bn_size: u64,
    classes: u64,
}

fn guess(
    sd: &StateDict,
    variant: Option<&str>,
    _: &Settings,
) -> Result<Box<dyn Model>, ExportError> {
    let classes = dim(sd, "classifier.weight", 0).unwrap_or(1000);
    if let Some(&(_, growth, blocks, init)) = variant.and_then(|v| TABLE.iter().find(|t| t.0 == v))
    {
        return Ok(Box::new(DenseNet {
            growth,
            blocks,
            init,
            bn_size: 4,
            classes,
        }));
    }
    let growth = dim(sd, "features.denseblock1.denselayer1.conv2.weight", 0).unwrap_or(32);
    let mut blocks = [0; 4];
    for (i, b) in blocks.iter_mut().enumerate() {
        *b = count(sd, &format!("features.denseblock{}.denselayer", i + 1), 1).max(1);
    }
    let init = dim(sd, "features.conv0.weight", 0).unwrap_or(64);
    let bottleneck = dim(sd, "features.denseblock1.denselayer1.conv1.weight", 0);
    let bn_size = match bottleneck {
        Some(b) if growth > 0 && b % growth == 0 => b / growth,
        _ => 4,
    };
    Ok(Box::new(DenseNet {
        growth,
        blocks,
        init,
        bn_size,
        classes,
    }))
}

const EPS: f32 = 1e-5;

impl Model for DenseNet {
    fn family(&self) -> &'static str {
        "densenet"
    }

    fn variant(&self) -> String {
        let key = (self.growth, self.blocks, self.init);
        match TABLE.iter().find(|t| (t.1, t.2, t.3) == key) {
            Some(t) if self.bn_size == 4 => t.0.to_string(),
            _ => format!(
                "densenet (growth {}, blocks {:?}, init {}, bn_size {})",
                self.growth, self.blocks, self.init, self.bn_size
            ),
        }
    }

    fn classes(&self) -> u64 {
        self.classes
    }

    fn forward(&self, e: &mut Emit<'_>, x: &str, _: (u64, u64)) -> Result<String, ExportError> {
        let y = e.conv2d("features.conv0", x, Conv::new(3, self.init, 7, 2, 3))?;
        let y = e.batch_norm("features.norm0", &y, self.init, EPS)?;
        let y = e.relu("features.relu0", &y)?;
        let mut y = e.max_pool("features.pool0", &y, 3, 2, 1, false, (0, 0))?;
        let mut c = self.init;
        for (i, &layers) in self.blocks.iter().enumerate() {
            let block = format!("features.denseblock{}", i + 1);
            let mut feats = vec![y.clone()];
            for l in 1..=layers {
                let at = format!("{block}.denselayer{l}");
                let cin = c + (l as u64 - 1) * self.growth;
                let refs: Vec<&str> = feats.iter().map(String::as_str).collect();
                let z = e.concat(&at, &refs, 1)?;
                let z = e.batch_norm(&join(&at, "norm1"), &z, cin, EPS)?;
                let z = e.relu(&join(&at, "relu1"), &z)?;
                let mid = self.bn_size * self.growth;
                let z = e.conv2d(&join(&at, "conv1"), &z, Conv::new(cin, mid, 1, 1, 0))?;
                let z = e.batch_norm(&join(&at, "norm2"), &z, mid, EPS)?;
                let z = e.relu(&join(&at, "relu2"), &z)?;
                let z = e.conv2d(
                    &join(&at, "conv2"),
                    &z,
                    Conv::new(mid, self.growth, 3, 1, 1),
                )?;
                feats.push(z);
            }
            let refs: Vec<&str> = feats.iter().map(String::as_str).collect();
            y = e.concat(&block, &refs, 1)?;
            c += layers as u64 * self.growth;
            if i < 3 {
                let at = format!("features.transition{}", i + 1);
                let z = e.batch_norm(&join(&at, "norm"), &y, c, EPS)?;
                let z = e.relu(&join(&at, "relu"), &z)?;
                let z = e.conv2d(&join(&at, "conv"), &z, Conv::new(c, c / 2, 1, 1, 0))?;
                y = e.avg_pool(&join(&at, "pool"), &z, 2, 2, 0)?;
                c /= 2;
            }
        }
        let y = e.batch_norm("features.norm5", &y, c, EPS)?;
        let y = e.relu("", &y)?;
        let y = e.global_avg_pool("", &y)?;
        let y = e.flatten("", &y)?;
        e.linear("classifier", &y, c, self.classes)
    }
}

//! torchvision's ResNet family: ResNet 18/34/50/101/152, ResNeXt
//! (50_32x4d, 101_32x8d, 101_64x4d) and Wide ResNet (50_2, 101_2) —
//! `torchvision.models.resnet`. The block type (basic or bottleneck), the
//! number of blocks per stage, groups and width per group and the classes
//! are read from the weights.

use super::read::{count, dim, has_under};
use super::{Family, Model, Settings};
use crate::emit::{Conv, Emit};
use crate::error::ExportError;
use crate::source::StateDict;

/// The family entry of the registry.
pub const FAMILY: Family = Family {
    name: "resnet",
    variants: &[
        "resnet18",
        "resnet34",
        "resnet50",
        "resnet101",
        "resnet152",
        "resnext50_32x4d",
        "resnext101_32x8d",
        "resnext101_64x4d",
        "wide_resnet50_2",
        "wide_resnet101_2",
    ],
    settings: &[],
    guess,
};

/// (name, bottleneck, layers, groups, width_per_group)
const TABLE: &[(&str, bool, [usize; 4], u64, u64)] = &[
    ("resnet18", false, [2, 2, 2, 2], 1, 64),
    ("resnet34", false, [3, 4, 6, 3], 1, 64),
    ("resnet50", true, [3, 4, 6, 3], 1, 64),
    ("resnet101", true, [3, 4, 23, 3], 1, 64),
    ("resnet152", true, [3, 8, 36, 3], 1, 64),
    ("resnext50_32x4d", true, [3, 4, 6, 3], 32, 4),
    ("resnext101_32x8d", true, [3, 4, 23, 3], 32, 8),
    ("resnext101_64x4d", true, [3, 4, 23, 3], 64, 4),
    ("wide_resnet50_2", true, [3, 4, 6, 3], 1, 128),
    ("wide_resnet101_2", true, [3, 4, 23, 3], 1, 128),
];

/// A ResNet with its hyper-parameters.
#[derive(Debug, Clone)]
pub struct ResNet {
    bottleneck: bool,
    layers: [usize; 4],
    groups: u64,
    width_per_group: u64,
    classes: u64,
}

fn guess(
    sd: &StateDict,
    variant: Option<&str>,
    _: &Settings,
) -> Result<Box<dyn Model>, ExportError> {
    let classes = dim(sd, "fc.weight", 0).unwrap_or(1000);
    // No residual stages at all: compare with resnet18 as torchvision
    // builds it.
    let variant = variant.or((!has_under(sd, "layer1")).then_some("resnet18"));
    if let Some(v) = variant
        && let Some(&(_, bottleneck, layers, groups, width_per_group)) =
            TABLE.iter().find(|t| t.0 == v)
    {
        return Ok(Box::new(ResNet {
            bottleneck,
            layers,
            groups,
            width_per_group,
            classes,
        }));
    }
    let bottleneck = sd.has("layer1.0.conv3.weight");
    let mut layers = [0; 4];
    for (i, l) in layers.iter_mut().enumerate() {
        *l = count(sd, &format!("layer{}.", i + 1), 0).max(1);
    }
    let (mut groups, mut width_per_group) = (1, 64);
    if bottleneck
        && let (Some(width), Some(per)) = (
            dim(sd, "layer1.0.conv2.weight", 0),
            dim(sd, "layer1.0.conv2.weight", 1),
        )
        && per > 0
        && width % per == 0
    {
        groups = width / per;
        width_per_group = width / groups;
    }
    Ok(Box::new(ResNet {
        bottleneck,
        layers,
        groups,
        width_per_group,
        classes,
    }))
}

const EPS: f32 = 1e-5;

impl ResNet {
    fn expansion(&self) -> u64 {
        if self.bottleneck { 4 } else { 1 }
    }

    fn conv_bn(
        &self,
        e: &mut Emit<'_>,
        at: &str,
        n: usize,
        x: &str,
        c: Conv,
    ) -> Result<String, ExportError> {
        let y = e.conv2d(&format!("{at}.conv{n}"), x, c)?;
        e.batch_norm(&format!("{at}.bn{n}"), &y, c.cout, EPS)
    }

    fn block(
        &self,
        e: &mut Emit<'_>,
        at: &str,
        x: &str,
        inplanes: u64,
        planes: u64,
        stride: u64,
    ) -> Result<String, ExportError> {
        let relu = format!("{at}.relu");
        let out_ch = planes * self.expansion();
        let out = if self.bottleneck {
            let width = planes * self.width_per_group / 64 * self.groups;
            let y = self.conv_bn(e, at, 1, x, Conv::new(inplanes, width, 1, 1, 0))?;
            let y = e.relu(&relu, &y)?;
            let c2 = Conv::new(width, width, 3, stride, 1).groups(self.groups);
            let y = self.conv_bn(e, at, 2, &y, c2)?;
            let y = e.relu(&relu, &y)?;
            self.conv_bn(e, at, 3, &y, Conv::new(width, out_ch, 1, 1, 0))?
        } else {
            let y = self.conv_bn(e, at, 1, x, Conv::new(inplanes, planes, 3, stride, 1))?;
            let y = e.relu(&relu, &y)?;
            self.conv_bn(e, at, 2, &y, Conv::new(planes, planes, 3, 1, 1))?
        };
        let identity = if stride != 1 || inplanes != out_ch {
            let d = format!("{at}.downsample");
            let y = e.conv2d(
                &format!("{d}.0"),
                x,
                Conv::new(inplanes, out_ch, 1, stride, 0),
            )?;
            e.batch_norm(&format!("{d}.1"), &y, out_ch, EPS)?
        } else {
            x.to_string()
        };
        let sum = e.add(at, &out, &identity)?;
        e.relu(&relu, &sum)
    }
}

impl Model for ResNet {
    fn family(&self) -> &'static str {
        "resnet"
    }

    fn variant(&self) -> String {
        let key = (
            self.bottleneck,
            self.layers,
            self.groups,
            self.width_per_group,
        );
        match TABLE.iter().find(|t| (t.1, t.2, t.3, t.4) == key) {
            Some(t) => t.0.to_string(),
            None => format!(
                "resnet ({} blocks {:?}, groups {}, width per group {})",
                if self.bottleneck {
                    "bottleneck"
                } else {
                    "basic"
                },
                self.layers,
                self.groups,
                self.width_per_group
            ),
        }
    }

    fn classes(&self) -> u64 {
        self.classes
    }

    fn forward(&self, e: &mut Emit<'_>, x: &str, _: (u64, u64)) -> Result<String, ExportError> {
        let y = e.conv2d("conv1", x, Conv::new(3, 64, 7, 2, 3))?;
        let y = e.batch_norm("bn1", &y, 64, EPS)?;
        let y = e.relu("relu", &y)?;
        let mut y = e.max_pool("maxpool", &y, 3, 2, 1, false, (0, 0))?;
        let mut inplanes = 64;
        for (i, &blocks) in self.layers.iter().enumerate() {
            let planes = 64 << i;
            for b in 0..blocks {
                let stride = if i > 0 && b == 0 { 2 } else { 1 };
                let at = format!("layer{}.{b}", i + 1);
                y = self.block(e, &at, &y, inplanes, planes, stride)?;
                inplanes = planes * self.expansion();
            }
        }
        let y = e.global_avg_pool("avgpool", &y)?;
        let y = e.flatten("", &y)?;
        e.linear("fc", &y, inplanes, self.classes)
    }
}

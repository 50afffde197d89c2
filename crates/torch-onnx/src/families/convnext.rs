//! torchvision's ConvNeXt tiny/small/base/large
//! (`torchvision.models.convnext`): the stage widths are read from the stem,
//! the blocks per stage from the weights, the classes from `classifier.2`.

use super::read::{count, dim};
use super::{Family, Model, Settings};
use crate::emit::{Conv, Emit, join};
use crate::error::ExportError;
use crate::source::StateDict;

/// The family entry of the registry.
pub const FAMILY: Family = Family {
    name: "convnext",
    variants: &[
        "convnext_tiny",
        "convnext_small",
        "convnext_base",
        "convnext_large",
    ],
    settings: &[],
    guess,
};

const TABLE: [(&str, [u64; 4], [usize; 4]); 4] = [
    ("convnext_tiny", [96, 192, 384, 768], [3, 3, 9, 3]),
    ("convnext_small", [96, 192, 384, 768], [3, 3, 27, 3]),
    ("convnext_base", [128, 256, 512, 1024], [3, 3, 27, 3]),
    ("convnext_large", [192, 384, 768, 1536], [3, 3, 27, 3]),
];

/// A ConvNeXt: widths, blocks per stage and classes.
#[derive(Debug, Clone)]
pub struct ConvNext {
    dims: [u64; 4],
    depths: [usize; 4],
    classes: u64,
}

fn guess(
    sd: &StateDict,
    variant: Option<&str>,
    _: &Settings,
) -> Result<Box<dyn Model>, ExportError> {
    let classes = dim(sd, "classifier.2.weight", 0).unwrap_or(1000);
    let stem = dim(sd, "features.0.0.weight", 0);
    let depth3 = count(sd, "features.5.", 0);
    let row = TABLE
        .iter()
        .find(|t| match variant {
            Some(v) => t.0 == v,
            None => Some(t.1[0]) == stem && t.2[2] == depth3,
        })
        .unwrap_or(&TABLE[0]);
    Ok(Box::new(ConvNext {
        dims: row.1,
        depths: row.2,
        classes,
    }))
}

const EPS: f32 = 1e-6;

/// `LayerNorm2d`: LayerNorm over the channels of an NCHW tensor.
fn layer_norm_2d(e: &mut Emit<'_>, at: &str, x: &str, c: u64) -> Result<String, ExportError> {
    let y = e.transpose(at, x, &[0, 2, 3, 1])?;
    let y = e.layer_norm(at, &y, c, EPS)?;
    e.transpose(at, &y, &[0, 3, 1, 2])
}

impl Model for ConvNext {
    fn family(&self) -> &'static str {
        "convnext"
    }

    fn variant(&self) -> String {
        TABLE
            .iter()
            .find(|t| t.1 == self.dims && t.2 == self.depths)
            .map_or_else(
                || format!("convnext ({:?}, {:?})", self.dims, self.depths),
                |t| t.0.to_string(),
            )
    }

    fn classes(&self) -> u64 {
        self.classes
    }

    fn forward(&self, e: &mut Emit<'_>, x: &str, _: (u64, u64)) -> Result<String, ExportError> {
        let d = self.dims;
        let y = e.conv2d("features.0.0", x, Conv::new(3, d[0], 4, 4, 0).bias())?;
        let mut y = layer_norm_2d(e, "features.0.1", &y, d[0])?;
        for i in 0..4 {
            let c = d[i];
            for b in 0..self.depths[i] {
                let at = format!("features.{}.{b}", 2 * i + 1);
                let blk = join(&at, "block");
                let z = e.conv2d(
                    &join(&blk, "0"),
                    &y,
                    Conv::new(c, c, 7, 1, 3).groups(c).bias(),
                )?;
                let z = e.transpose(&join(&blk, "1"), &z, &[0, 2, 3, 1])?;
                let z = e.layer_norm(&join(&blk, "2"), &z, c, EPS)?;
                let z = e.linear_nd(&join(&blk, "3"), &z, c, 4 * c)?;
                let z = e.gelu(&join(&blk, "4"), &z)?;
                let z = e.linear_nd(&join(&blk, "5"), &z, 4 * c, c)?;
                let z = e.transpose(&join(&blk, "6"), &z, &[0, 3, 1, 2])?;
                let scale = e.param(&join(&at, "layer_scale"), &[c, 1, 1])?;
                let z = e.mul(&at, &scale, &z)?;
                y = e.add(&at, &z, &y)?;
            }
            if i < 3 {
                let at = format!("features.{}", 2 * i + 2);
                let z = layer_norm_2d(e, &join(&at, "0"), &y, c)?;
                y = e.conv2d(&join(&at, "1"), &z, Conv::new(c, d[i + 1], 2, 2, 0).bias())?;
            }
        }
        let y = e.global_avg_pool("avgpool", &y)?;
        let y = layer_norm_2d(e, "classifier.0", &y, d[3])?;
        let y = e.flatten("classifier.1", &y)?;
        e.linear("classifier.2", &y, d[3], self.classes)
    }
}

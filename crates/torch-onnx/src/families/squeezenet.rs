//! torchvision's SqueezeNet 1.0 and 1.1 (`torchvision.models.squeezenet`):
//! told apart by the first convolution (7x7 to 96 channels, or 3x3 to 64);
//! the classes are read from `classifier.1`, the final 1x1 convolution.

use super::read::dim;
use super::{Family, Model, Settings};
use crate::emit::{Conv, Emit, conv_out, join, pool_out};
use crate::error::ExportError;
use crate::source::StateDict;

/// The family entry of the registry.
pub const FAMILY: Family = Family {
    name: "squeezenet",
    variants: &["squeezenet1_0", "squeezenet1_1"],
    settings: &[],
    guess,
};

/// SqueezeNet with its version and classes.
#[derive(Debug, Clone)]
pub struct SqueezeNet {
    v1_1: bool,
    classes: u64,
}

fn guess(
    sd: &StateDict,
    variant: Option<&str>,
    _: &Settings,
) -> Result<Box<dyn Model>, ExportError> {
    let v1_1 = match variant {
        Some(v) => v == "squeezenet1_1",
        None => dim(sd, "features.0.weight", 0) == Some(64),
    };
    Ok(Box::new(SqueezeNet {
        v1_1,
        classes: dim(sd, "classifier.1.weight", 0).unwrap_or(1000),
    }))
}

/// A layer of `features`: a ceil-mode max pool or a Fire module
/// (inplanes, squeeze, expand1x1, expand3x3).
enum L {
    Pool,
    Fire(u64, u64, u64, u64),
}

const V1_0: &[L] = &[
    L::Pool,
    L::Fire(96, 16, 64, 64),
    L::Fire(128, 16, 64, 64),
    L::Fire(128, 32, 128, 128),
    L::Pool,
    L::Fire(256, 32, 128, 128),
    L::Fire(256, 48, 192, 192),
    L::Fire(384, 48, 192, 192),
    L::Fire(384, 64, 256, 256),
    L::Pool,
    L::Fire(512, 64, 256, 256),
];

const V1_1: &[L] = &[
    L::Pool,
    L::Fire(64, 16, 64, 64),
    L::Fire(128, 16, 64, 64),
    L::Pool,
    L::Fire(128, 32, 128, 128),
    L::Fire(256, 32, 128, 128),
    L::Pool,
    L::Fire(256, 48, 192, 192),
    L::Fire(384, 48, 192, 192),
    L::Fire(384, 64, 256, 256),
    L::Fire(512, 64, 256, 256),
];

fn fire(
    e: &mut Emit<'_>,
    at: &str,
    x: &str,
    f: (u64, u64, u64, u64),
) -> Result<String, ExportError> {
    let (cin, sq, e1, e3) = f;
    let s = e.conv2d(&join(at, "squeeze"), x, Conv::new(cin, sq, 1, 1, 0).bias())?;
    let s = e.relu(&join(at, "squeeze_activation"), &s)?;
    let a = e.conv2d(
        &join(at, "expand1x1"),
        &s,
        Conv::new(sq, e1, 1, 1, 0).bias(),
    )?;
    let a = e.relu(&join(at, "expand1x1_activation"), &a)?;
    let b = e.conv2d(
        &join(at, "expand3x3"),
        &s,
        Conv::new(sq, e3, 3, 1, 1).bias(),
    )?;
    let b = e.relu(&join(at, "expand3x3_activation"), &b)?;
    e.concat(at, &[&a, &b], 1)
}

impl Model for SqueezeNet {
    fn family(&self) -> &'static str {
        "squeezenet"
    }

    fn variant(&self) -> String {
        if self.v1_1 {
            "squeezenet1_1"
        } else {
            "squeezenet1_0"
        }
        .into()
    }

    fn classes(&self) -> u64 {
        self.classes
    }

    fn forward(&self, e: &mut Emit<'_>, x: &str, size: (u64, u64)) -> Result<String, ExportError> {
        let (first, k, layers) = if self.v1_1 {
            (Conv::new(3, 64, 3, 2, 0).bias(), 3, V1_1)
        } else {
            (Conv::new(3, 96, 7, 2, 0).bias(), 7, V1_0)
        };
        let mut y = e.conv2d("features.0", x, first)?;
        y = e.relu("features.1", &y)?;
        let mut hw = (conv_out(size.0, k, 2, 0, 1), conv_out(size.1, k, 2, 0, 1));
        for (i, l) in layers.iter().enumerate() {
            let at = format!("features.{}", i + 2);
            match *l {
                L::Pool => {
                    y = e.max_pool(&at, &y, 3, 2, 0, true, hw)?;
                    hw = (pool_out(hw.0, 3, 2, 0, true), pool_out(hw.1, 3, 2, 0, true));
                }
                L::Fire(a, b, c, d) => y = fire(e, &at, &y, (a, b, c, d))?,
            }
        }
        let y = e.conv2d(
            "classifier.1",
            &y,
            Conv::new(512, self.classes, 1, 1, 0).bias(),
        )?;
        let y = e.relu("classifier.2", &y)?;
        let y = e.global_avg_pool("classifier.3", &y)?;
        e.flatten("", &y)
    }
}

//! torchvision's MobileNet v3 small and large
//! (`torchvision.models.mobilenetv3`): told apart by the number of blocks;
//! the classes are read from `classifier.3`.

use super::blocks::{Act, conv_norm_act, make_divisible, squeeze_excitation};
use super::read::{count, dim};
use super::{Family, Model, Settings};
use crate::emit::{Emit, join};
use crate::error::ExportError;
use crate::source::StateDict;

/// The family entry of the registry.
pub const FAMILY: Family = Family {
    name: "mobilenet_v3",
    variants: &["mobilenet_v3_large", "mobilenet_v3_small"],
    settings: &[],
    guess,
};

/// (input, kernel, expanded, output, SE, hard swish, stride)
type Cnf = (u64, u64, u64, u64, bool, bool, u64);

const LARGE: &[Cnf] = &[
    (16, 3, 16, 16, false, false, 1),
    (16, 3, 64, 24, false, false, 2),
    (24, 3, 72, 24, false, false, 1),
    (24, 5, 72, 40, true, false, 2),
    (40, 5, 120, 40, true, false, 1),
    (40, 5, 120, 40, true, false, 1),
    (40, 3, 240, 80, false, true, 2),
    (80, 3, 200, 80, false, true, 1),
    (80, 3, 184, 80, false, true, 1),
    (80, 3, 184, 80, false, true, 1),
    (80, 3, 480, 112, true, true, 1),
    (112, 3, 672, 112, true, true, 1),
    (112, 5, 672, 160, true, true, 2),
    (160, 5, 960, 160, true, true, 1),
    (160, 5, 960, 160, true, true, 1),
];

const SMALL: &[Cnf] = &[
    (16, 3, 16, 16, true, false, 2),
    (16, 3, 72, 24, false, false, 2),
    (24, 3, 88, 24, false, false, 1),
    (24, 5, 96, 40, true, true, 2),
    (40, 5, 240, 40, true, true, 1),
    (40, 5, 240, 40, true, true, 1),
    (40, 5, 120, 48, true, true, 1),
    (48, 5, 144, 48, true, true, 1),
    (48, 5, 288, 96, true, true, 2),
    (96, 5, 576, 96, true, true, 1),
    (96, 5, 576, 96, true, true, 1),
];

/// MobileNet v3 with its size and classes.
#[derive(Debug, Clone)]
pub struct MobileNetV3 {
    large: bool,
    classes: u64,
}

fn guess(
    sd: &StateDict,
    variant: Option<&str>,
    _: &Settings,
) -> Result<Box<dyn Model>, ExportError> {
    let large = match variant {
        Some(v) => v == "mobilenet_v3_large",
        None => count(sd, "features.", 0) != SMALL.len() + 2,
    };
    Ok(Box::new(MobileNetV3 {
        large,
        classes: dim(sd, "classifier.3.weight", 0).unwrap_or(1000),
    }))
}

const EPS: f32 = 0.001;

impl Model for MobileNetV3 {
    fn family(&self) -> &'static str {
        "mobilenet_v3"
    }

    fn variant(&self) -> String {
        if self.large {
            "mobilenet_v3_large"
        } else {
            "mobilenet_v3_small"
        }
        .into()
    }

    fn classes(&self) -> u64 {
        self.classes
    }

    fn forward(&self, e: &mut Emit<'_>, x: &str, _: (u64, u64)) -> Result<String, ExportError> {
        let (cnfs, last) = if self.large {
            (LARGE, 1280)
        } else {
            (SMALL, 1024)
        };
        let mut y = conv_norm_act(e, "features.0", x, 3, 16, 3, 2, 1, EPS, Act::HardSwish)?;
        for (i, &(cin, k, exp, cout, se, hs, stride)) in cnfs.iter().enumerate() {
            let at = format!("features.{}.block", i + 1);
            let a = if hs { Act::HardSwish } else { Act::Relu };
            let mut z = y.clone();
            let mut j = 0;
            if exp != cin {
                z = conv_norm_act(e, &join(&at, "0"), &z, cin, exp, 1, 1, 1, EPS, a)?;
                j += 1;
            }
            z = conv_norm_act(
                e,
                &join(&at, &j.to_string()),
                &z,
                exp,
                exp,
                k,
                stride,
                exp,
                EPS,
                a,
            )?;
            j += 1;
            if se {
                let sq = make_divisible((exp / 4) as f64, 8);
                z = squeeze_excitation(
                    e,
                    &join(&at, &j.to_string()),
                    &z,
                    exp,
                    sq,
                    Act::Relu,
                    true,
                )?;
                j += 1;
            }
            z = conv_norm_act(
                e,
                &join(&at, &j.to_string()),
                &z,
                exp,
                cout,
                1,
                1,
                1,
                EPS,
                Act::None,
            )?;
            y = if stride == 1 && cin == cout {
                e.add(&format!("features.{}", i + 1), &z, &y)?
            } else {
                z
            };
        }
        let cin = cnfs[cnfs.len() - 1].3;
        let at = format!("features.{}", cnfs.len() + 1);
        let y = conv_norm_act(e, &at, &y, cin, 6 * cin, 1, 1, 1, EPS, Act::HardSwish)?;
        let y = e.global_avg_pool("avgpool", &y)?;
        let y = e.flatten("", &y)?;
        let y = e.linear("classifier.0", &y, 6 * cin, last)?;
        let y = e.hard_swish("classifier.1", &y)?;
        e.linear("classifier.3", &y, last, self.classes)
    }
}

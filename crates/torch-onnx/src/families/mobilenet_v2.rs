//! torchvision's MobileNet v2 (`torchvision.models.mobilenetv2`): the
//! width multiplier is read from the first convolution, the classes from
//! `classifier.1`.

use super::blocks::{Act, conv_norm_act, make_divisible};
use super::read::dim;
use super::{Family, Model, Settings};
use crate::emit::{Conv, Emit, join};
use crate::error::ExportError;
use crate::source::StateDict;

/// The family entry of the registry.
pub const FAMILY: Family = Family {
    name: "mobilenet_v2",
    variants: &["mobilenet_v2"],
    settings: &[],
    guess,
};

/// (expand ratio, channels, repeats, stride) of torchvision's table.
const SETTINGS: [(u64, u64, usize, u64); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

const WIDTHS: [f64; 7] = [1.0, 0.35, 0.5, 0.75, 1.3, 1.4, 0.25];

/// MobileNet v2 with its width multiplier and classes.
#[derive(Debug, Clone)]
pub struct MobileNetV2 {
    width: f64,
    classes: u64,
}

fn guess(sd: &StateDict, _: Option<&str>, _: &Settings) -> Result<Box<dyn Model>, ExportError> {
    let first = dim(sd, "features.0.0.weight", 0);
    let width = WIDTHS
        .iter()
        .copied()
        .find(|&w| Some(make_divisible(32.0 * w, 8)) == first)
        .unwrap_or(1.0);
    Ok(Box::new(MobileNetV2 {
        width,
        classes: dim(sd, "classifier.1.weight", 0).unwrap_or(1000),
    }))
}

const EPS: f32 = 1e-5;

impl Model for MobileNetV2 {
    fn family(&self) -> &'static str {
        "mobilenet_v2"
    }

    fn variant(&self) -> String {
        if self.width == 1.0 {
            "mobilenet_v2".into()
        } else {
            format!("mobilenet_v2 (width_mult {})", self.width)
        }
    }

    fn classes(&self) -> u64 {
        self.classes
    }

    fn forward(&self, e: &mut Emit<'_>, x: &str, _: (u64, u64)) -> Result<String, ExportError> {
        let mut cin = make_divisible(32.0 * self.width, 8);
        let last = make_divisible(1280.0 * self.width.max(1.0), 8);
        let mut y = conv_norm_act(e, "features.0", x, 3, cin, 3, 2, 1, EPS, Act::Relu6)?;
        let mut i = 1;
        for (t, c, n, s) in SETTINGS {
            let cout = make_divisible(c as f64 * self.width, 8);
            for r in 0..n {
                let stride = if r == 0 { s } else { 1 };
                let at = format!("features.{i}.conv");
                let hidden = cin * t;
                let mut z = y.clone();
                let mut j = 0;
                if t != 1 {
                    z = conv_norm_act(
                        e,
                        &join(&at, "0"),
                        &z,
                        cin,
                        hidden,
                        1,
                        1,
                        1,
                        EPS,
                        Act::Relu6,
                    )?;
                    j = 1;
                }
                let dw = join(&at, &j.to_string());
                z = conv_norm_act(
                    e,
                    &dw,
                    &z,
                    hidden,
                    hidden,
                    3,
                    stride,
                    hidden,
                    EPS,
                    Act::Relu6,
                )?;
                let pw = join(&at, &(j + 1).to_string());
                z = e.conv2d(&pw, &z, Conv::new(hidden, cout, 1, 1, 0))?;
                z = e.batch_norm(&join(&at, &(j + 2).to_string()), &z, cout, EPS)?;
                y = if stride == 1 && cin == cout {
                    e.add(&format!("features.{i}"), &y, &z)?
                } else {
                    z
                };
                cin = cout;
                i += 1;
            }
        }
        let y = conv_norm_act(
            e,
            &format!("features.{i}"),
            &y,
            cin,
            last,
            1,
            1,
            1,
            EPS,
            Act::Relu6,
        )?;
        let y = e.global_avg_pool("", &y)?;
        let y = e.flatten("", &y)?;
        e.linear("classifier.1", &y, last, self.classes)
    }
}

//! torchvision's MNASNet 0.5/0.75/1.0/1.3 (`torchvision.models.mnasnet`):
//! the depth multiplier is read from the stem, the classes from
//! `classifier.1`.

use super::read::dim;
use super::{Family, Model, Settings};
use crate::emit::{Conv, Emit, join};
use crate::error::ExportError;
use crate::source::StateDict;

/// The family entry of the registry.
pub const FAMILY: Family = Family {
    name: "mnasnet",
    variants: &["mnasnet0_5", "mnasnet0_75", "mnasnet1_0", "mnasnet1_3"],
    settings: &[],
    guess,
};

const ALPHAS: [(&str, f64); 4] = [
    ("mnasnet0_5", 0.5),
    ("mnasnet0_75", 0.75),
    ("mnasnet1_0", 1.0),
    ("mnasnet1_3", 1.3),
];

/// torchvision's `_round_to_multiple_of(val, 8)`.
fn round8(val: f64) -> u64 {
    let new = 8u64.max((val + 4.0) as u64 / 8 * 8);
    if new as f64 >= 0.9 * val {
        new
    } else {
        new + 8
    }
}

fn depths(alpha: f64) -> [u64; 8] {
    [32, 16, 24, 40, 80, 96, 192, 320].map(|d| round8(d as f64 * alpha))
}

/// MNASNet with its depth multiplier and classes.
#[derive(Debug, Clone)]
pub struct MnasNet {
    name: &'static str,
    alpha: f64,
    classes: u64,
}

fn guess(
    sd: &StateDict,
    variant: Option<&str>,
    _: &Settings,
) -> Result<Box<dyn Model>, ExportError> {
    let stem = dim(sd, "layers.0.weight", 0);
    let &(name, alpha) = ALPHAS
        .iter()
        .find(|a| match variant {
            Some(v) => a.0 == v,
            None => Some(depths(a.1)[0]) == stem,
        })
        .unwrap_or(&ALPHAS[2]);
    Ok(Box::new(MnasNet {
        name,
        alpha,
        classes: dim(sd, "classifier.1.weight", 0).unwrap_or(1000),
    }))
}

const EPS: f32 = 1e-5;

fn conv_bn(e: &mut Emit<'_>, at: &str, i: usize, x: &str, c: Conv) -> Result<String, ExportError> {
    let y = e.conv2d(&join(at, &i.to_string()), x, c)?;
    e.batch_norm(&join(at, &(i + 1).to_string()), &y, c.cout, EPS)
}

impl Model for MnasNet {
    fn family(&self) -> &'static str {
        "mnasnet"
    }

    fn variant(&self) -> String {
        self.name.to_string()
    }

    fn classes(&self) -> u64 {
        self.classes
    }

    fn forward(&self, e: &mut Emit<'_>, x: &str, _: (u64, u64)) -> Result<String, ExportError> {
        let d = depths(self.alpha);
        let y = conv_bn(e, "layers", 0, x, Conv::new(3, d[0], 3, 2, 1))?;
        let y = e.relu("layers.2", &y)?;
        let y = conv_bn(
            e,
            "layers",
            3,
            &y,
            Conv::new(d[0], d[0], 3, 1, 1).groups(d[0]),
        )?;
        let y = e.relu("layers.5", &y)?;
        let mut y = conv_bn(e, "layers", 6, &y, Conv::new(d[0], d[1], 1, 1, 0))?;
        // (kernel, stride, expansion, repeats) of the six stacks.
        let stacks = [
            (3, 2, 3, 3),
            (5, 2, 3, 3),
            (5, 2, 6, 3),
            (3, 1, 6, 2),
            (5, 2, 6, 4),
            (3, 1, 6, 1),
        ];
        for (i, &(k, s, t, n)) in stacks.iter().enumerate() {
            for r in 0..n {
                let (cin, stride) = if r == 0 { (d[i + 1], s) } else { (d[i + 2], 1) };
                let cout = d[i + 2];
                let at = format!("layers.{}.{r}.layers", i + 8);
                let mid = cin * t;
                let z = conv_bn(e, &at, 0, &y, Conv::new(cin, mid, 1, 1, 0))?;
                let z = e.relu(&join(&at, "2"), &z)?;
                let z = conv_bn(
                    e,
                    &at,
                    3,
                    &z,
                    Conv::new(mid, mid, k, stride, k / 2).groups(mid),
                )?;
                let z = e.relu(&join(&at, "5"), &z)?;
                let z = conv_bn(e, &at, 6, &z, Conv::new(mid, cout, 1, 1, 0))?;
                y = if cin == cout && stride == 1 {
                    e.add(&format!("layers.{}.{r}", i + 8), &z, &y)?
                } else {
                    z
                };
            }
        }
        let y = conv_bn(e, "layers", 14, &y, Conv::new(d[7], 1280, 1, 1, 0))?;
        let y = e.relu("layers.16", &y)?;
        let y = e.reduce_mean("", &y, &[2, 3], false)?;
        e.linear("classifier.1", &y, 1280, self.classes)
    }
}

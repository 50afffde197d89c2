//! torchvision's ShuffleNet v2 x0.5/x1.0/x1.5/x2.0
//! (`torchvision.models.shufflenetv2`): the stage widths are read from the
//! weights, the classes from `fc`.

use super::read::dim;
use super::{Family, Model, Settings};
use crate::emit::{Conv, Emit, conv_out, join};
use crate::error::ExportError;
use crate::source::StateDict;

/// The family entry of the registry.
pub const FAMILY: Family = Family {
    name: "shufflenet_v2",
    variants: &[
        "shufflenet_v2_x0_5",
        "shufflenet_v2_x1_0",
        "shufflenet_v2_x1_5",
        "shufflenet_v2_x2_0",
    ],
    settings: &[],
    guess,
};

const TABLE: [(&str, [u64; 5]); 4] = [
    ("shufflenet_v2_x0_5", [24, 48, 96, 192, 1024]),
    ("shufflenet_v2_x1_0", [24, 116, 232, 464, 1024]),
    ("shufflenet_v2_x1_5", [24, 176, 352, 704, 1024]),
    ("shufflenet_v2_x2_0", [24, 244, 488, 976, 2048]),
];

const REPEATS: [usize; 3] = [4, 8, 4];

/// ShuffleNet v2 with its widths and classes.
#[derive(Debug, Clone)]
pub struct ShuffleNetV2 {
    name: &'static str,
    widths: [u64; 5],
    classes: u64,
}

fn guess(
    sd: &StateDict,
    variant: Option<&str>,
    _: &Settings,
) -> Result<Box<dyn Model>, ExportError> {
    let stage2 = dim(sd, "stage2.0.branch1.2.weight", 0).map(|b| b * 2);
    let &(name, widths) = TABLE
        .iter()
        .find(|t| match variant {
            Some(v) => t.0 == v,
            None => Some(t.1[1]) == stage2,
        })
        .unwrap_or(&TABLE[1]);
    Ok(Box::new(ShuffleNetV2 {
        name,
        widths,
        classes: dim(sd, "fc.weight", 0).unwrap_or(1000),
    }))
}

const EPS: f32 = 1e-5;

fn conv_bn(e: &mut Emit<'_>, at: &str, i: usize, x: &str, c: Conv) -> Result<String, ExportError> {
    let y = e.conv2d(&join(at, &i.to_string()), x, c)?;
    e.batch_norm(&join(at, &(i + 1).to_string()), &y, c.cout, EPS)
}

impl ShuffleNetV2 {
    #[allow(clippy::too_many_arguments)]
    fn unit(
        &self,
        e: &mut Emit<'_>,
        at: &str,
        x: &str,
        inp: u64,
        oup: u64,
        stride: u64,
        hw: (u64, u64),
    ) -> Result<String, ExportError> {
        let bf = oup / 2;
        let (left, right) = if stride > 1 {
            let b1 = join(at, "branch1");
            let y = conv_bn(e, &b1, 0, x, Conv::new(inp, inp, 3, stride, 1).groups(inp))?;
            let y = conv_bn(e, &b1, 2, &y, Conv::new(inp, bf, 1, 1, 0))?;
            let y = e.relu(&join(&b1, "4"), &y)?;
            (y, x.to_string())
        } else {
            let mut halves = e.split(at, x, &[bf as i64, bf as i64], 1)?;
            let r = halves.pop().unwrap_or_default();
            (halves.pop().unwrap_or_default(), r)
        };
        let b2 = join(at, "branch2");
        let cin = if stride > 1 { inp } else { bf };
        let y = conv_bn(e, &b2, 0, &right, Conv::new(cin, bf, 1, 1, 0))?;
        let y = e.relu(&join(&b2, "2"), &y)?;
        let y = conv_bn(e, &b2, 3, &y, Conv::new(bf, bf, 3, stride, 1).groups(bf))?;
        let y = conv_bn(e, &b2, 5, &y, Conv::new(bf, bf, 1, 1, 0))?;
        let y = e.relu(&join(&b2, "7"), &y)?;
        let out = e.concat(at, &[&left, &y], 1)?;
        // channel_shuffle(out, 2): view as [N, 2, C/2, H, W], swap 1 and 2
        // (H, W the unit's output size).
        let (h, w) = (hw.0 as i64, hw.1 as i64);
        let z = e.reshape(at, &out, &[0, 2, bf as i64, h, w])?;
        let z = e.transpose(at, &z, &[0, 2, 1, 3, 4])?;
        e.reshape(at, &z, &[0, -1, h, w])
    }
}

impl Model for ShuffleNetV2 {
    fn family(&self) -> &'static str {
        "shufflenet_v2"
    }

    fn variant(&self) -> String {
        self.name.to_string()
    }

    fn classes(&self) -> u64 {
        self.classes
    }

    fn forward(&self, e: &mut Emit<'_>, x: &str, size: (u64, u64)) -> Result<String, ExportError> {
        let w = self.widths;
        let half = |n: u64| conv_out(n, 3, 2, 1, 1);
        let mut hw = (half(half(size.0)), half(half(size.1)));
        let y = conv_bn(e, "conv1", 0, x, Conv::new(3, w[0], 3, 2, 1))?;
        let y = e.relu("conv1.2", &y)?;
        let mut y = e.max_pool("maxpool", &y, 3, 2, 1, false, (0, 0))?;
        let mut inp = w[0];
        for (s, &n) in REPEATS.iter().enumerate() {
            let oup = w[s + 1];
            for r in 0..n {
                let at = format!("stage{}.{r}", s + 2);
                let stride = if r == 0 { 2 } else { 1 };
                if r == 0 {
                    hw = (half(hw.0), half(hw.1));
                }
                y = self.unit(e, &at, &y, inp, oup, stride, hw)?;
                inp = oup;
            }
        }
        let y = conv_bn(e, "conv5", 0, &y, Conv::new(inp, w[4], 1, 1, 0))?;
        let y = e.relu("conv5.2", &y)?;
        let y = e.reduce_mean("", &y, &[2, 3], false)?;
        e.linear("fc", &y, w[4], self.classes)
    }
}

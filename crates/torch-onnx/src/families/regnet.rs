//! torchvision's RegNet X and Y (`torchvision.models.regnet`): the blocks
//! per stage, the stage widths, the group width and Squeeze-Excitation (Y)
//! are read from the weights; the classes from `fc`.

use super::blocks::{Act, conv_norm_act, squeeze_excitation};
use super::read::{count, dim, has_under};
use super::{Family, Model, Settings};
use crate::emit::{Emit, join};
use crate::error::ExportError;
use crate::source::StateDict;

/// (name, SE, blocks per stage, widths, group widths)
type Row = (&'static str, bool, [usize; 4], [u64; 4], [u64; 4]);

const TABLE: &[Row] = &[
    (
        "regnet_x_400mf",
        false,
        [1, 2, 7, 12],
        [32, 64, 160, 400],
        [16, 16, 16, 16],
    ),
    (
        "regnet_x_800mf",
        false,
        [1, 3, 7, 5],
        [64, 128, 288, 672],
        [16, 16, 16, 16],
    ),
    (
        "regnet_x_1_6gf",
        false,
        [2, 4, 10, 2],
        [72, 168, 408, 912],
        [24, 24, 24, 24],
    ),
    (
        "regnet_x_3_2gf",
        false,
        [2, 6, 15, 2],
        [96, 192, 432, 1008],
        [48, 48, 48, 48],
    ),
    (
        "regnet_x_8gf",
        false,
        [2, 5, 15, 1],
        [80, 240, 720, 1920],
        [80, 120, 120, 120],
    ),
    (
        "regnet_x_16gf",
        false,
        [2, 6, 13, 1],
        [256, 512, 896, 2048],
        [128, 128, 128, 128],
    ),
    (
        "regnet_x_32gf",
        false,
        [2, 7, 13, 1],
        [336, 672, 1344, 2520],
        [168, 168, 168, 168],
    ),
    (
        "regnet_y_400mf",
        true,
        [1, 3, 6, 6],
        [48, 104, 208, 440],
        [8, 8, 8, 8],
    ),
    (
        "regnet_y_800mf",
        true,
        [1, 3, 8, 2],
        [64, 144, 320, 784],
        [16, 16, 16, 16],
    ),
    (
        "regnet_y_1_6gf",
        true,
        [2, 6, 17, 2],
        [48, 120, 336, 888],
        [24, 24, 24, 24],
    ),
    (
        "regnet_y_3_2gf",
        true,
        [2, 5, 13, 1],
        [72, 216, 576, 1512],
        [24, 24, 24, 24],
    ),
    (
        "regnet_y_8gf",
        true,
        [2, 4, 10, 1],
        [224, 448, 896, 2016],
        [56, 56, 56, 56],
    ),
    (
        "regnet_y_16gf",
        true,
        [2, 4, 11, 1],
        [224, 448, 1232, 3024],
        [112, 112, 112, 112],
    ),
    (
        "regnet_y_32gf",
        true,
        [2, 5, 12, 1],
        [232, 696, 1392, 3712],
        [232, 232, 232, 232],
    ),
    (
        "regnet_y_128gf",
        true,
        [2, 7, 17, 1],
        [528, 1056, 2904, 7392],
        [264, 264, 264, 264],
    ),
];

/// The family entry of the registry.
pub const FAMILY: Family = Family {
    name: "regnet",
    variants: &[
        "regnet_x_400mf",
        "regnet_x_800mf",
        "regnet_x_1_6gf",
        "regnet_x_3_2gf",
        "regnet_x_8gf",
        "regnet_x_16gf",
        "regnet_x_32gf",
        "regnet_y_400mf",
        "regnet_y_800mf",
        "regnet_y_1_6gf",
        "regnet_y_3_2gf",
        "regnet_y_8gf",
        "regnet_y_16gf",
        "regnet_y_32gf",
        "regnet_y_128gf",
    ],
    settings: &[],
    guess,
};

/// A RegNet: its stages and classes.
#[derive(Debug, Clone)]
pub struct RegNet {
    se: bool,
    depths: [usize; 4],
    widths: [u64; 4],
    group_widths: [u64; 4],
    classes: u64,
}

fn guess(
    sd: &StateDict,
    variant: Option<&str>,
    _: &Settings,
) -> Result<Box<dyn Model>, ExportError> {
    let classes = dim(sd, "fc.weight", 0).unwrap_or(1000);
    let row = variant
        .and_then(|v| TABLE.iter().find(|t| t.0 == v))
        .or((!has_under(sd, "trunk_output")).then_some(&TABLE[7]));
    if let Some(&(_, se, depths, widths, group_widths)) = row {
        return Ok(Box::new(RegNet {
            se,
            depths,
            widths,
            group_widths,
            classes,
        }));
    }
    let mut m = RegNet {
        se: false,
        depths: [1; 4],
        widths: [32; 4],
        group_widths: [8; 4],
        classes,
    };
    for i in 0..4 {
        let s = i + 1;
        let first = format!("trunk_output.block{s}.block{s}-0.f");
        m.depths[i] = count(sd, &format!("trunk_output.block{s}.block{s}-"), 0).max(1);
        m.widths[i] = dim(sd, &format!("{first}.c.0.weight"), 0).unwrap_or(32);
        m.group_widths[i] = dim(sd, &format!("{first}.b.0.weight"), 1).unwrap_or(8);
        m.se |= has_under(sd, &format!("{first}.se"));
    }
    Ok(Box::new(m))
}

const EPS: f32 = 1e-5;

impl Model for RegNet {
    fn family(&self) -> &'static str {
        "regnet"
    }

    fn variant(&self) -> String {
        let key = (self.se, self.depths, self.widths, self.group_widths);
        match TABLE.iter().find(|t| (t.1, t.2, t.3, t.4) == key) {
            Some(t) => t.0.to_string(),
            None => format!(
                "regnet_{} (depths {:?}, widths {:?}, group widths {:?})",
                if self.se { "y" } else { "x" },
                self.depths,
                self.widths,
                self.group_widths
            ),
        }
    }

    fn classes(&self) -> u64 {
        self.classes
    }

    fn forward(&self, e: &mut Emit<'_>, x: &str, _: (u64, u64)) -> Result<String, ExportError> {
        let mut y = conv_norm_act(e, "stem", x, 3, 32, 3, 2, 1, EPS, Act::Relu)?;
        let mut w_in = 32;
        for i in 0..4 {
            let s = i + 1;
            let (w, gw) = (self.widths[i], self.group_widths[i]);
            for b in 0..self.depths[i] {
                let at = format!("trunk_output.block{s}.block{s}-{b}");
                let stride = if b == 0 { 2 } else { 1 };
                let f = join(&at, "f");
                let g = (w / gw.max(1)).max(1);
                let z = conv_norm_act(e, &join(&f, "a"), &y, w_in, w, 1, 1, 1, EPS, Act::Relu)?;
                let mut z =
                    conv_norm_act(e, &join(&f, "b"), &z, w, w, 3, stride, g, EPS, Act::Relu)?;
                if self.se {
                    let sq = (0.25 * w_in as f64).round() as u64;
                    z = squeeze_excitation(e, &join(&f, "se"), &z, w, sq, Act::Relu, false)?;
                }
                let z = conv_norm_act(e, &join(&f, "c"), &z, w, w, 1, 1, 1, EPS, Act::None)?;
                let shortcut = if w_in != w || stride != 1 {
                    conv_norm_act(
                        e,
                        &join(&at, "proj"),
                        &y,
                        w_in,
                        w,
                        1,
                        stride,
                        1,
                        EPS,
                        Act::None,
                    )?
                } else {
                    y.clone()
                };
                let sum = e.add(&at, &shortcut, &z)?;
                y = e.relu(&join(&at, "activation"), &sum)?;
                w_in = w;
            }
        }
        let y = e.global_avg_pool("avgpool", &y)?;
        let y = e.flatten("", &y)?;
        e.linear("fc", &y, w_in, self.classes)
    }
}

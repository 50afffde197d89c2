//! torchvision's GoogLeNet and Inception v3 (`torchvision.models.googlenet`,
//! `torchvision.models.inception`): fixed architectures whose classes are
//! read from `fc`; the auxiliary classifiers (`aux1`/`aux2`, `AuxLogits`)
//! are accepted when present and, as in eval mode, not run.
//! `transform_input` (true for torchvision's pretrained weights, false
//! otherwise) is not in the weights: `--set transform_input=true`.

use super::read::{dim, has_under};
use super::{Family, Model, Settings};
use crate::emit::{Conv, Emit, join};
use crate::error::ExportError;
use crate::source::StateDict;

/// GoogLeNet's registry entry.
pub const GOOGLENET: Family = Family {
    name: "googlenet",
    variants: &["googlenet"],
    settings: &["transform_input"],
    guess: guess_googlenet,
};

/// Inception v3's registry entry.
pub const INCEPTION_V3: Family = Family {
    name: "inception_v3",
    variants: &["inception_v3"],
    settings: &["transform_input"],
    guess: guess_inception,
};

/// GoogLeNet or Inception v3.
#[derive(Debug, Clone)]
pub struct Inception {
    v3: bool,
    aux: bool,
    transform_input: bool,
    classes: u64,
}

fn guess_googlenet(
    sd: &StateDict,
    _: Option<&str>,
    s: &Settings,
) -> Result<Box<dyn Model>, ExportError> {
    Ok(Box::new(Inception {
        v3: false,
        aux: has_under(sd, "aux1"),
        transform_input: s.flag("transform_input", false)?,
        classes: dim(sd, "fc.weight", 0).unwrap_or(1000),
    }))
}

fn guess_inception(
    sd: &StateDict,
    _: Option<&str>,
    s: &Settings,
) -> Result<Box<dyn Model>, ExportError> {
    Ok(Box::new(Inception {
        v3: true,
        aux: has_under(sd, "AuxLogits"),
        transform_input: s.flag("transform_input", false)?,
        classes: dim(sd, "fc.weight", 0).unwrap_or(1000),
    }))
}

/// `BasicConv2d`: conv (no bias), BatchNorm (eps 0.001), ReLU.
fn bc(e: &mut Emit<'_>, at: &str, x: &str, c: Conv) -> Result<String, ExportError> {
    let y = e.conv2d(&join(at, "conv"), x, c)?;
    let y = e.batch_norm(&join(at, "bn"), &y, c.cout, 0.001)?;
    e.relu(at, &y)
}

/// Declares a `BasicConv2d`'s keys without running it (an auxiliary head).
fn declare_bc(e: &mut Emit<'_>, at: &str, c: Conv) {
    let (kh, kw, ..) = c.rect.unwrap_or((c.k, c.k, c.pad, c.pad));
    e.unused_param(&join(at, "conv.weight"), &[c.cout, c.cin, kh, kw]);
    for k in ["weight", "bias", "running_mean", "running_var"] {
        e.unused_param(&format!("{at}.bn.{k}"), &[c.cout]);
    }
    e.unused_buffer(&join(at, "bn.num_batches_tracked"), &[]);
}

fn c1(cin: u64, cout: u64) -> Conv {
    Conv::new(cin, cout, 1, 1, 0)
}

impl Inception {
    /// torchvision's `_transform_input`: each channel from ImageNet
    /// normalisation to the (x - 0.5) / 0.5 one the weights expect.
    fn transform(&self, e: &mut Emit<'_>, x: &str) -> Result<String, ExportError> {
        let mean = [0.485f64, 0.456, 0.406];
        let std = [0.229f64, 0.224, 0.225];
        let scale: Vec<f32> = std.iter().map(|s| (s / 0.5) as f32).collect();
        let shift: Vec<f32> = mean.iter().map(|m| ((m - 0.5) / 0.5) as f32).collect();
        let a = e.const_f32s("", &scale, &[1, 3, 1, 1])?;
        let b = e.const_f32s("", &shift, &[1, 3, 1, 1])?;
        let y = e.mul("", x, &a)?;
        e.add("", &y, &b)
    }

    fn googlenet_block(
        e: &mut Emit<'_>,
        at: &str,
        x: &str,
        c: [u64; 7],
        hw: (u64, u64),
    ) -> Result<String, ExportError> {
        let [cin, c1x1, c3r, c3, c5r, c5, pp] = c;
        let b1 = bc(e, &join(at, "branch1"), x, c1(cin, c1x1))?;
        let b2 = bc(e, &join(at, "branch2.0"), x, c1(cin, c3r))?;
        let b2 = bc(e, &join(at, "branch2.1"), &b2, Conv::new(c3r, c3, 3, 1, 1))?;
        let b3 = bc(e, &join(at, "branch3.0"), x, c1(cin, c5r))?;
        let b3 = bc(e, &join(at, "branch3.1"), &b3, Conv::new(c5r, c5, 3, 1, 1))?;
        let b4 = e.max_pool(&join(at, "branch4.0"), x, 3, 1, 1, true, hw)?;
        let b4 = bc(e, &join(at, "branch4.1"), &b4, c1(cin, pp))?;
        e.concat(at, &[&b1, &b2, &b3, &b4], 1)
    }

    fn googlenet(
        &self,
        e: &mut Emit<'_>,
        x: &str,
        size: (u64, u64),
    ) -> Result<String, ExportError> {
        use crate::emit::{conv_out, pool_out};
        let pool = |n: u64| pool_out(n, 3, 2, 0, true);
        let mut hw = (conv_out(size.0, 7, 2, 3, 1), conv_out(size.1, 7, 2, 3, 1));
        let y = bc(e, "conv1", x, Conv::new(3, 64, 7, 2, 3))?;
        let y = e.max_pool("maxpool1", &y, 3, 2, 0, true, hw)?;
        hw = (pool(hw.0), pool(hw.1));
        let y = bc(e, "conv2", &y, c1(64, 64))?;
        let y = bc(e, "conv3", &y, Conv::new(64, 192, 3, 1, 1))?;
        let y = e.max_pool("maxpool2", &y, 3, 2, 0, true, hw)?;
        hw = (pool(hw.0), pool(hw.1));
        let y = Self::googlenet_block(e, "inception3a", &y, [192, 64, 96, 128, 16, 32, 32], hw)?;
        let y = Self::googlenet_block(e, "inception3b", &y, [256, 128, 128, 192, 32, 96, 64], hw)?;
        let y = e.max_pool("maxpool3", &y, 3, 2, 0, true, hw)?;
        hw = (pool(hw.0), pool(hw.1));
        let y = Self::googlenet_block(e, "inception4a", &y, [480, 192, 96, 208, 16, 48, 64], hw)?;
        let y = Self::googlenet_block(e, "inception4b", &y, [512, 160, 112, 224, 24, 64, 64], hw)?;
        let y = Self::googlenet_block(e, "inception4c", &y, [512, 128, 128, 256, 24, 64, 64], hw)?;
        let y = Self::googlenet_block(e, "inception4d", &y, [512, 112, 144, 288, 32, 64, 64], hw)?;
        let y =
            Self::googlenet_block(e, "inception4e", &y, [528, 256, 160, 320, 32, 128, 128], hw)?;
        let y = e.max_pool("maxpool4", &y, 2, 2, 0, true, hw)?;
        hw = (pool_out(hw.0, 2, 2, 0, true), pool_out(hw.1, 2, 2, 0, true));
        let y =
            Self::googlenet_block(e, "inception5a", &y, [832, 256, 160, 320, 32, 128, 128], hw)?;
        let y =
            Self::googlenet_block(e, "inception5b", &y, [832, 384, 192, 384, 48, 128, 128], hw)?;
        if self.aux {
            for (aux, cin) in [("aux1", 512), ("aux2", 528)] {
                declare_bc(e, &join(aux, "conv"), c1(cin, 128));
                e.unused_param(&format!("{aux}.fc1.weight"), &[1024, 2048]);
                e.unused_param(&format!("{aux}.fc1.bias"), &[1024]);
                e.unused_param(&format!("{aux}.fc2.weight"), &[self.classes, 1024]);
                e.unused_param(&format!("{aux}.fc2.bias"), &[self.classes]);
            }
        }
        let y = e.global_avg_pool("avgpool", &y)?;
        let y = e.flatten("", &y)?;
        e.linear("fc", &y, 1024, self.classes)
    }

    fn avg3(e: &mut Emit<'_>, at: &str, x: &str) -> Result<String, ExportError> {
        e.avg_pool(at, x, 3, 1, 1)
    }

    fn block_a(
        e: &mut Emit<'_>,
        at: &str,
        x: &str,
        cin: u64,
        pf: u64,
    ) -> Result<String, ExportError> {
        let b1 = bc(e, &join(at, "branch1x1"), x, c1(cin, 64))?;
        let b5 = bc(e, &join(at, "branch5x5_1"), x, c1(cin, 48))?;
        let b5 = bc(e, &join(at, "branch5x5_2"), &b5, Conv::new(48, 64, 5, 1, 2))?;
        let b3 = bc(e, &join(at, "branch3x3dbl_1"), x, c1(cin, 64))?;
        let b3 = bc(
            e,
            &join(at, "branch3x3dbl_2"),
            &b3,
            Conv::new(64, 96, 3, 1, 1),
        )?;
        let b3 = bc(
            e,
            &join(at, "branch3x3dbl_3"),
            &b3,
            Conv::new(96, 96, 3, 1, 1),
        )?;
        let bp = Self::avg3(e, at, x)?;
        let bp = bc(e, &join(at, "branch_pool"), &bp, c1(cin, pf))?;
        e.concat(at, &[&b1, &b5, &b3, &bp], 1)
    }

    fn block_b(e: &mut Emit<'_>, at: &str, x: &str, cin: u64) -> Result<String, ExportError> {
        let b3 = bc(e, &join(at, "branch3x3"), x, Conv::new(cin, 384, 3, 2, 0))?;
        let bd = bc(e, &join(at, "branch3x3dbl_1"), x, c1(cin, 64))?;
        let bd = bc(
            e,
            &join(at, "branch3x3dbl_2"),
            &bd,
            Conv::new(64, 96, 3, 1, 1),
        )?;
        let bd = bc(
            e,
            &join(at, "branch3x3dbl_3"),
            &bd,
            Conv::new(96, 96, 3, 2, 0),
        )?;
        let bp = e.max_pool(at, x, 3, 2, 0, false, (0, 0))?;
        e.concat(at, &[&b3, &bd, &bp], 1)
    }

    fn block_c(e: &mut Emit<'_>, at: &str, x: &str, c7: u64) -> Result<String, ExportError> {
        let (cin, r17, r71) = (768, (1, 7, 0, 3), (7, 1, 3, 0));
        let rc = |a: u64, b: u64, r: (u64, u64, u64, u64)| Conv::rect(a, b, r.0, r.1, r.2, r.3);
        let b1 = bc(e, &join(at, "branch1x1"), x, c1(cin, 192))?;
        let b7 = bc(e, &join(at, "branch7x7_1"), x, c1(cin, c7))?;
        let b7 = bc(e, &join(at, "branch7x7_2"), &b7, rc(c7, c7, r17))?;
        let b7 = bc(e, &join(at, "branch7x7_3"), &b7, rc(c7, 192, r71))?;
        let bd = bc(e, &join(at, "branch7x7dbl_1"), x, c1(cin, c7))?;
        let bd = bc(e, &join(at, "branch7x7dbl_2"), &bd, rc(c7, c7, r71))?;
        let bd = bc(e, &join(at, "branch7x7dbl_3"), &bd, rc(c7, c7, r17))?;
        let bd = bc(e, &join(at, "branch7x7dbl_4"), &bd, rc(c7, c7, r71))?;
        let bd = bc(e, &join(at, "branch7x7dbl_5"), &bd, rc(c7, 192, r17))?;
        let bp = Self::avg3(e, at, x)?;
        let bp = bc(e, &join(at, "branch_pool"), &bp, c1(cin, 192))?;
        e.concat(at, &[&b1, &b7, &bd, &bp], 1)
    }

    fn block_d(e: &mut Emit<'_>, at: &str, x: &str) -> Result<String, ExportError> {
        let b3 = bc(e, &join(at, "branch3x3_1"), x, c1(768, 192))?;
        let b3 = bc(
            e,
            &join(at, "branch3x3_2"),
            &b3,
            Conv::new(192, 320, 3, 2, 0),
        )?;
        let b7 = bc(e, &join(at, "branch7x7x3_1"), x, c1(768, 192))?;
        let b7 = bc(
            e,
            &join(at, "branch7x7x3_2"),
            &b7,
            Conv::rect(192, 192, 1, 7, 0, 3),
        )?;
        let b7 = bc(
            e,
            &join(at, "branch7x7x3_3"),
            &b7,
            Conv::rect(192, 192, 7, 1, 3, 0),
        )?;
        let b7 = bc(
            e,
            &join(at, "branch7x7x3_4"),
            &b7,
            Conv::new(192, 192, 3, 2, 0),
        )?;
        let bp = e.max_pool(at, x, 3, 2, 0, false, (0, 0))?;
        e.concat(at, &[&b3, &b7, &bp], 1)
    }

    fn block_e(e: &mut Emit<'_>, at: &str, x: &str, cin: u64) -> Result<String, ExportError> {
        let b1 = bc(e, &join(at, "branch1x1"), x, c1(cin, 320))?;
        let b3 = bc(e, &join(at, "branch3x3_1"), x, c1(cin, 384))?;
        let b3a = bc(
            e,
            &join(at, "branch3x3_2a"),
            &b3,
            Conv::rect(384, 384, 1, 3, 0, 1),
        )?;
        let b3b = bc(
            e,
            &join(at, "branch3x3_2b"),
            &b3,
            Conv::rect(384, 384, 3, 1, 1, 0),
        )?;
        let b3 = e.concat(at, &[&b3a, &b3b], 1)?;
        let bd = bc(e, &join(at, "branch3x3dbl_1"), x, c1(cin, 448))?;
        let bd = bc(
            e,
            &join(at, "branch3x3dbl_2"),
            &bd,
            Conv::new(448, 384, 3, 1, 1),
        )?;
        let bda = bc(
            e,
            &join(at, "branch3x3dbl_3a"),
            &bd,
            Conv::rect(384, 384, 1, 3, 0, 1),
        )?;
        let bdb = bc(
            e,
            &join(at, "branch3x3dbl_3b"),
            &bd,
            Conv::rect(384, 384, 3, 1, 1, 0),
        )?;
        let bd = e.concat(at, &[&bda, &bdb], 1)?;
        let bp = Self::avg3(e, at, x)?;
        let bp = bc(e, &join(at, "branch_pool"), &bp, c1(cin, 192))?;
        e.concat(at, &[&b1, &b3, &bd, &bp], 1)
    }

    fn inception_v3(&self, e: &mut Emit<'_>, x: &str) -> Result<String, ExportError> {
        let y = bc(e, "Conv2d_1a_3x3", x, Conv::new(3, 32, 3, 2, 0))?;
        let y = bc(e, "Conv2d_2a_3x3", &y, Conv::new(32, 32, 3, 1, 0))?;
        let y = bc(e, "Conv2d_2b_3x3", &y, Conv::new(32, 64, 3, 1, 1))?;
        let y = e.max_pool("maxpool1", &y, 3, 2, 0, false, (0, 0))?;
        let y = bc(e, "Conv2d_3b_1x1", &y, c1(64, 80))?;
        let y = bc(e, "Conv2d_4a_3x3", &y, Conv::new(80, 192, 3, 1, 0))?;
        let y = e.max_pool("maxpool2", &y, 3, 2, 0, false, (0, 0))?;
        let y = Self::block_a(e, "Mixed_5b", &y, 192, 32)?;
        let y = Self::block_a(e, "Mixed_5c", &y, 256, 64)?;
        let y = Self::block_a(e, "Mixed_5d", &y, 288, 64)?;
        let y = Self::block_b(e, "Mixed_6a", &y, 288)?;
        let y = Self::block_c(e, "Mixed_6b", &y, 128)?;
        let y = Self::block_c(e, "Mixed_6c", &y, 160)?;
        let y = Self::block_c(e, "Mixed_6d", &y, 160)?;
        let y = Self::block_c(e, "Mixed_6e", &y, 192)?;
        if self.aux {
            declare_bc(e, "AuxLogits.conv0", c1(768, 128));
            declare_bc(e, "AuxLogits.conv1", Conv::new(128, 768, 5, 1, 0));
            e.unused_param("AuxLogits.fc.weight", &[self.classes, 768]);
            e.unused_param("AuxLogits.fc.bias", &[self.classes]);
        }
        let y = Self::block_d(e, "Mixed_7a", &y)?;
        let y = Self::block_e(e, "Mixed_7b", &y, 1280)?;
        let y = Self::block_e(e, "Mixed_7c", &y, 2048)?;
        let y = e.global_avg_pool("avgpool", &y)?;
        let y = e.flatten("", &y)?;
        e.linear("fc", &y, 2048, self.classes)
    }
}

impl Model for Inception {
    fn family(&self) -> &'static str {
        if self.v3 { "inception_v3" } else { "googlenet" }
    }

    fn variant(&self) -> String {
        self.family().to_string()
    }

    fn classes(&self) -> u64 {
        self.classes
    }

    fn default_input(&self) -> (u64, u64) {
        if self.v3 { (299, 299) } else { (224, 224) }
    }

    fn forward(&self, e: &mut Emit<'_>, x: &str, size: (u64, u64)) -> Result<String, ExportError> {
        let t;
        let x = if self.transform_input {
            t = self.transform(e, x)?;
            t.as_str()
        } else {
            x
        };
        if self.v3 {
            self.inception_v3(e, x)
        } else {
            self.googlenet(e, x, size)
        }
    }
}

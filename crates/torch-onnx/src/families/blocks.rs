//! Building blocks several families share, as torchvision's
//! `torchvision.ops.misc` defines them: `Conv2dNormActivation`,
//! `SqueezeExcitation`, and `_make_divisible`.

use crate::emit::{Conv, Emit, join};
use crate::error::ExportError;

/// The activation of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// None.
    None,
    /// `nn.ReLU`.
    Relu,
    /// `nn.ReLU6`.
    Relu6,
    /// `nn.Hardswish`.
    HardSwish,
    /// `nn.SiLU`.
    Silu,
    /// `nn.GELU` (exact).
    Gelu,
}

/// Applies `act` as the module at `at`.
pub fn act(e: &mut Emit<'_>, at: &str, x: &str, act: Act) -> Result<String, ExportError> {
    match act {
        Act::None => Ok(x.to_string()),
        Act::Relu => e.relu(at, x),
        Act::Relu6 => e.clip(at, x, 0.0, 6.0),
        Act::HardSwish => e.hard_swish(at, x),
        Act::Silu => e.silu(at, x),
        Act::Gelu => e.gelu(at, x),
    }
}

/// `Conv2dNormActivation(cin, cout, k, stride, groups, norm=BatchNorm2d(eps),
/// activation)`: keys `at.0` (conv, no bias), `at.1` (BatchNorm), the
/// activation at `at.2`; padding `(k - 1) / 2 * dilation`.
#[allow(clippy::too_many_arguments)]
pub fn conv_norm_act(
    e: &mut Emit<'_>,
    at: &str,
    x: &str,
    cin: u64,
    cout: u64,
    k: u64,
    stride: u64,
    groups: u64,
    eps: f32,
    a: Act,
) -> Result<String, ExportError> {
    let c = Conv::new(cin, cout, k, stride, (k - 1) / 2).groups(groups);
    let y = e.conv2d(&join(at, "0"), x, c)?;
    let y = e.batch_norm(&join(at, "1"), &y, cout, eps)?;
    act(e, &join(at, "2"), &y, a)
}

/// `SqueezeExcitation(channels, squeeze, activation, scale_activation)`:
/// global average pool, `fc1` (1x1 conv with bias), activation, `fc2`,
/// scale activation (sigmoid, or hard sigmoid when `hard`), times the input.
pub fn squeeze_excitation(
    e: &mut Emit<'_>,
    at: &str,
    x: &str,
    channels: u64,
    squeeze: u64,
    a: Act,
    hard: bool,
) -> Result<String, ExportError> {
    let s = e.global_avg_pool(&join(at, "avgpool"), x)?;
    let s = e.conv2d(
        &join(at, "fc1"),
        &s,
        Conv::new(channels, squeeze, 1, 1, 0).bias(),
    )?;
    let s = act(e, &join(at, "activation"), &s, a)?;
    let s = e.conv2d(
        &join(at, "fc2"),
        &s,
        Conv::new(squeeze, channels, 1, 1, 0).bias(),
    )?;
    let s = if hard {
        e.hard_sigmoid(&join(at, "scale_activation"), &s)?
    } else {
        e.sigmoid(&join(at, "scale_activation"), &s)?
    };
    e.mul(at, &s, x)
}

/// torchvision's `_make_divisible(v, divisor)`: the nearest multiple of
/// `divisor`, at least `divisor`, not below 90% of `v`.
pub fn make_divisible(v: f64, divisor: u64) -> u64 {
    let d = divisor as f64;
    let mut new_v = d.max(((v + d / 2.0) as u64 / divisor * divisor) as f64);
    if new_v < 0.9 * v {
        new_v += d;
    }
    new_v as u64
}

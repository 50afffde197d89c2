//! ONNX `Resize` (opset 11+): nearest (four rounding modes), linear and
//! cubic interpolation, applied one axis after the other (the onnx
//! reference is separable the same way), with every coordinate
//! transformation mode, `exclude_outside`, `extrapolation_value`, `axes`
//! and `keep_aspect_ratio_policy`. Computed in float64.
//!
//! The same kernel runs the older forms (`Upsample` 7 and 9, `Resize` 10):
//! scales only (an attribute, or input 1), asymmetric coordinates and
//! output sizes computed in float32, and nearest rounding as onnxruntime
//! has it for them ([`Rounding::Legacy`]); so does Caffe2's
//! `ResizeNearest` (with [`Rounding::Floor`]).

use super::{KResult, Kernel, arg, axis, opt};
use crate::tensor::{Data, Tensor};

/// Interpolation mode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Nearest with a rounding rule: round_prefer_floor, round_prefer_ceil,
    /// floor, ceil.
    Nearest(Rounding),
    /// Linear.
    Linear,
    /// Cubic with coefficient `a`.
    Cubic(f64),
}

/// Nearest-mode rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Rounding {
    PreferFloor,
    PreferCeil,
    Floor,
    Ceil,
    /// Before opset 11 (no `nearest_mode` yet): the coordinate truncated
    /// when the axis is upsampled (scale >= 1), rounded up when it is
    /// downsampled (onnxruntime's "simple" mode).
    Legacy,
}

/// Coordinate transformation modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Coord {
    HalfPixel,
    HalfPixelSymmetric,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfCropAndResize,
}

/// The op's attributes.
#[derive(Debug)]
pub struct Resize {
    /// Interpolation.
    pub mode: Mode,
    /// Coordinate transformation.
    pub coord: Coord,
    /// Zero (and renormalize) weights outside the input.
    pub exclude_outside: bool,
    /// Value outside the crop (tf_crop_and_resize).
    pub extrapolation: f64,
    /// The axes scales/sizes refer to.
    pub axes: Option<Vec<i64>>,
    /// 0 stretch, 1 not_larger, 2 not_smaller.
    pub keep_aspect: u8,
    /// Where the scales come from: `None` for opset 11+ (roi, scales,
    /// sizes as inputs 1 to 3), else the pre-11 forms.
    pub legacy: Option<LegacyScales>,
}

/// The scales of `Upsample` and `Resize` before opset 11.
#[derive(Debug, Clone, PartialEq)]
pub enum LegacyScales {
    /// `Upsample` 7: the `scales` attribute.
    Fixed(Vec<f64>),
    /// `Upsample` 9 and `Resize` 10: input 1 (at least 1 for `Upsample`).
    Input {
        /// `Upsample`: scales below 1 are an error.
        upsample: bool,
    },
}

impl Resize {
    fn coeffs(&self, r: f64, down: bool) -> Vec<f64> {
        match self.mode {
            Mode::Nearest(m) => {
                if r == 1.0 {
                    return vec![0.0, 1.0];
                }
                let up = match m {
                    Rounding::PreferFloor => r > 0.5,
                    Rounding::PreferCeil => r >= 0.5,
                    Rounding::Floor => false,
                    Rounding::Ceil => true,
                    Rounding::Legacy => down,
                };
                if up { vec![0.0, 1.0] } else { vec![1.0, 0.0] }
            }
            Mode::Linear => vec![1.0 - r, r],
            Mode::Cubic(a) => {
                let s = 1.0 - r;
                vec![
                    ((a * (r + 1.0) - 5.0 * a) * (r + 1.0) + 8.0 * a) * (r + 1.0) - 4.0 * a,
                    ((a + 2.0) * r - (a + 3.0)) * r * r + 1.0,
                    ((a + 2.0) * s - (a + 3.0)) * s * s + 1.0,
                    ((a * (s + 1.0) - 5.0 * a) * (s + 1.0) + 8.0 * a) * (s + 1.0) - 4.0 * a,
                ]
            }
        }
    }

    /// Resamples `v` (shape `shape`) along axis `ax` to `out` positions.
    #[allow(clippy::too_many_arguments)]
    fn axis_pass(
        &self,
        v: &[f64],
        shape: &[usize],
        ax: usize,
        out: usize,
        scale: f64,
        roi: (f64, f64),
    ) -> Vec<f64> {
        let inn = shape[ax];
        let outer: usize = shape[..ax].iter().product();
        let inner: usize = shape[ax + 1..].iter().product();
        let out_w = scale * inn as f64;
        // Per output position: (taps, weights) or None for the extrapolation value.
        let plan: Vec<Option<(Vec<usize>, Vec<f64>)>> = (0..out)
            .map(|x| {
                let x = x as f64;
                let xo = match self.coord {
                    Coord::AlignCorners => {
                        if out_w == 1.0 {
                            0.0
                        } else {
                            x * (inn as f64 - 1.0) / (out_w - 1.0)
                        }
                    }
                    // The pre-11 forms (and Caffe2) compute it in float32,
                    // which decides the nearest index at exact boundaries.
                    Coord::Asymmetric if self.legacy.is_some() => (x as f32 / scale as f32) as f64,
                    Coord::Asymmetric => x / scale,
                    Coord::TfCropAndResize => {
                        let mut xo = if out_w == 1.0 {
                            (roi.1 - roi.0) * (inn as f64 - 1.0) / 2.0
                        } else {
                            x * (roi.1 - roi.0) * (inn as f64 - 1.0) / (out_w - 1.0)
                        };
                        xo += roi.0 * (inn as f64 - 1.0);
                        if xo < 0.0 || xo > inn as f64 - 1.0 {
                            return None;
                        }
                        xo
                    }
                    Coord::PytorchHalfPixel => {
                        if out_w == 1.0 {
                            -0.5
                        } else {
                            (x + 0.5) / scale - 0.5
                        }
                    }
                    Coord::HalfPixel => (x + 0.5) / scale - 0.5,
                    Coord::HalfPixelSymmetric => {
                        let adjustment = out as f64 / out_w;
                        let center = inn as f64 / 2.0;
                        center * (1.0 - adjustment) + (x + 0.5) / scale - 0.5
                    }
                };
                let x0 = xo.floor();
                let r = if xo == x0 { 1.0 } else { xo - x0 };
                let mut c = self.coeffs(r, scale < 1.0);
                let n = c.len() as i64;
                // The n integers nearest to xo, smaller ones first: from
                // floor(xo) - n/2 + 1 when xo is not an integer, one lower
                // when it is (r = 1).
                let first = x0 as i64 - n / 2 + 1 - if r == 1.0 { 1 } else { 0 };
                let idx: Vec<i64> = (0..n).map(|i| first + i).collect();
                if self.exclude_outside {
                    for (i, &j) in idx.iter().enumerate() {
                        if j < 0 || j >= inn as i64 {
                            c[i] = 0.0;
                        }
                    }
                    let s: f64 = c.iter().sum();
                    if s != 0.0 {
                        for e in c.iter_mut() {
                            *e /= s;
                        }
                    }
                }
                let taps = idx
                    .iter()
                    .map(|&j| j.clamp(0, inn as i64 - 1) as usize)
                    .collect();
                Some((taps, c))
            })
            .collect();
        let mut res = vec![0f64; outer * out * inner];
        for o in 0..outer {
            for (x, p) in plan.iter().enumerate() {
                for i in 0..inner {
                    res[(o * out + x) * inner + i] = match p {
                        None => self.extrapolation,
                        Some((taps, w)) => taps
                            .iter()
                            .zip(w)
                            .map(|(&t, &c)| c * v[(o * inn + t) * inner + i])
                            .sum(),
                    };
                }
            }
        }
        res
    }
}

impl Kernel for Resize {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        let r = x.rank();
        let axes: Vec<usize> = match &self.axes {
            Some(a) => a.iter().map(|&v| axis(v, r)).collect::<Result<_, _>>()?,
            None => (0..r).collect(),
        };
        let (roi_in, scales_in, sizes_in) = match &self.legacy {
            None => (
                opt(inputs, 1)
                    .map(|t| t.data.to_f64_vec())
                    .filter(|v| !v.is_empty()),
                opt(inputs, 2)
                    .map(|t| t.data.to_f64_vec())
                    .filter(|v| !v.is_empty()),
                opt(inputs, 3)
                    .map(|t| t.to_i64_vec())
                    .transpose()?
                    .filter(|v| !v.is_empty()),
            ),
            Some(LegacyScales::Fixed(s)) => (None, Some(s.clone()), None),
            Some(LegacyScales::Input { upsample }) => {
                let s = arg(inputs, 1)?.data.to_f64_vec();
                if *upsample && s.iter().any(|&v| v < 1.0) {
                    return Err(format!("Upsample scales must be at least 1: {s:?}"));
                }
                (None, Some(s), None)
            }
        };
        if let Some(s) = &scales_in
            && let Some(bad) = s.iter().find(|&&v| !(v > 0.0 && v.is_finite()))
        {
            return Err(format!("scale {bad} (scales must be positive): {s:?}"));
        }
        let mut scales = vec![1.0f64; r];
        let mut out: Vec<usize> = x.shape.clone();
        match (scales_in, sizes_in) {
            (Some(s), None) => {
                if s.len() != axes.len() {
                    return Err(format!("{} scales for {} axes", s.len(), axes.len()));
                }
                for (i, &a) in axes.iter().enumerate() {
                    scales[a] = s[i];
                    out[a] = if self.legacy.is_some() {
                        (s[i] as f32 * x.shape[a] as f32) as usize
                    } else {
                        (s[i] * x.shape[a] as f64) as usize
                    };
                }
            }
            (None, Some(sz)) => {
                if sz.len() != axes.len() {
                    return Err(format!("{} sizes for {} axes", sz.len(), axes.len()));
                }
                for (i, &a) in axes.iter().enumerate() {
                    out[a] = super::dim(sz[i])?;
                    scales[a] = out[a] as f64 / x.shape[a] as f64;
                }
                if self.keep_aspect != 0 {
                    let it = axes.iter().map(|&a| scales[a]);
                    let s = if self.keep_aspect == 1 {
                        it.fold(f64::INFINITY, f64::min)
                    } else {
                        it.fold(f64::NEG_INFINITY, f64::max)
                    };
                    for &a in &axes {
                        scales[a] = s;
                        out[a] = (s * x.shape[a] as f64 + 0.5).floor() as usize;
                    }
                }
            }
            _ => return Err("exactly one of scales and sizes must be given".into()),
        }
        let roi = |a: usize| -> (f64, f64) {
            match &roi_in {
                Some(v) if v.len() == 2 * r => (v[a], v[r + a]),
                Some(v) if v.len() == 2 * axes.len() => {
                    let i = axes.iter().position(|&b| b == a).unwrap_or(0);
                    (v[i], v[axes.len() + i])
                }
                _ => (0.0, 1.0),
            }
        };
        let mut v = x.data.to_f64_vec();
        let mut shape = x.shape.clone();
        for a in 0..r {
            if out[a] == shape[a] && scales[a] == 1.0 && self.coord != Coord::TfCropAndResize {
                continue;
            }
            v = self.axis_pass(&v, &shape, a, out[a], scales[a], roi(a));
            shape[a] = out[a];
        }
        let dt = x.dtype();
        let t = Tensor::new(shape, Data::F64(v))?;
        if dt.is_floating_point() {
            return Ok(vec![t.cast(dt)?]);
        }
        // Integers saturate, as onnx's saturate_cast does, after rounding.
        let (lo, hi) = match dt {
            netport_tensor::DType::UInt8 => (0.0, 255.0),
            netport_tensor::DType::Int8 => (-128.0, 127.0),
            _ => (f64::MIN, f64::MAX),
        };
        let vals: Vec<f64> = t
            .data
            .to_f64_vec()
            .iter()
            .map(|&e| e.round_ties_even().clamp(lo, hi))
            .collect();
        Ok(vec![Tensor::new(
            t.shape.clone(),
            Data::from_f64(dt, &vals).ok_or("dtype")?,
        )?])
    }
}

//! Spectral ops: ONNX `DFT` (opset 17: `axis` an attribute; 20+: an
//! input) and `STFT` (17+). Signals are real (last dim 1) or complex (last
//! dim 2, real then imaginary); the transform is the direct sum in float64
//! over one signal at a time (O(n^2) per signal, memory O(n)), as numpy's
//! `fft`, `ifft` and `irfft` define it: the signal is cut or zero-padded to
//! `dft_length`; `onesided` keeps the first `n / 2 + 1` bins; an inverse
//! onesided transform is `irfft` (real output, the imaginary parts of the
//! first and Nyquist bins ignored).

use super::{KResult, Kernel, arg, opt};
use crate::tensor::{Data, Tensor};
use std::f64::consts::PI;

/// One transform of a complex signal given as `(re, im)` samples (missing
/// samples are zero), to `bins` outputs of an `n`-point DFT.
fn dft_1d(re: &[f64], im: &[f64], n: usize, bins: usize, inverse: bool, out: &mut [(f64, f64)]) {
    let sign = if inverse { 1.0 } else { -1.0 };
    let m = re.len().min(n);
    for (k, o) in out.iter_mut().enumerate().take(bins) {
        let (mut sr, mut si) = (0.0, 0.0);
        for t in 0..m {
            // k * t mod n keeps the angle small and exact.
            let ang = sign * 2.0 * PI * ((k * t) % n) as f64 / n as f64;
            let (s, c) = ang.sin_cos();
            sr += re[t] * c - im[t] * s;
            si += re[t] * s + im[t] * c;
        }
        if inverse {
            sr /= n as f64;
            si /= n as f64;
        }
        *o = (sr, si);
    }
}

/// numpy's `irfft`: the real `n`-point inverse of a one-sided spectrum.
fn irfft_1d(re: &[f64], im: &[f64], n: usize, out: &mut [f64]) {
    let half = n / 2 + 1;
    let get = |k: usize| {
        if k < re.len() {
            (re[k], im[k])
        } else {
            (0.0, 0.0)
        }
    };
    for (t, o) in out.iter_mut().enumerate().take(n) {
        let mut s = get(0).0;
        for k in 1..half {
            let (r, i) = get(k);
            let ang = 2.0 * PI * ((k * t) % n) as f64 / n as f64;
            let (sn, cs) = ang.sin_cos();
            if n.is_multiple_of(2) && k == n / 2 {
                s += r * cs;
            } else {
                s += 2.0 * (r * cs - i * sn);
            }
        }
        *o = s / n as f64;
    }
}

/// Applies a transform along `ax` of `x` (`[..., L, ..., c]`, `c` 1 or 2,
/// `ax` not the last dim).
fn transform(
    x: &Tensor,
    ax: usize,
    n: usize,
    onesided: bool,
    inverse: bool,
    window: Option<&[f64]>,
) -> Result<Tensor, String> {
    let r = x.rank();
    if r < 2 || ax >= r - 1 {
        return Err(format!(
            "axis {ax} of shape {:?}: the signal axis cannot be the last (complex) dim",
            x.shape
        ));
    }
    let c = x.shape[r - 1];
    if c != 1 && c != 2 {
        return Err(format!(
            "the last dim is {c}: 1 (real) or 2 (complex) expected"
        ));
    }
    if n == 0 {
        return Err("dft_length is 0".into());
    }
    let len = x.shape[ax];
    let outer: usize = x.shape[..ax].iter().product();
    let inner: usize = x.shape[ax + 1..r - 1].iter().product();
    let irfft = inverse && onesided;
    let bins = if irfft {
        n
    } else if onesided {
        n / 2 + 1
    } else {
        n
    };
    let oc = if irfft { 1 } else { 2 };
    let v = x.data.to_f64_vec();
    let mut out = vec![0f64; outer * bins * inner * oc];
    let mut re = vec![0f64; len];
    let mut im = vec![0f64; len];
    let mut line = vec![(0f64, 0f64); bins];
    let mut real = vec![0f64; bins];
    for o in 0..outer {
        for i in 0..inner {
            for t in 0..len {
                let base = ((o * len + t) * inner + i) * c;
                let w = window.map_or(1.0, |w| w.get(t).copied().unwrap_or(0.0));
                re[t] = v[base] * w;
                im[t] = if c == 2 { v[base + 1] * w } else { 0.0 };
            }
            if irfft {
                irfft_1d(&re, &im, n, &mut real);
                for (k, &val) in real.iter().enumerate() {
                    out[(o * bins + k) * inner + i] = val;
                }
            } else {
                dft_1d(&re, &im, n, bins, inverse, &mut line);
                for (k, &(a, b)) in line.iter().enumerate() {
                    let base = ((o * bins + k) * inner + i) * 2;
                    out[base] = a;
                    out[base + 1] = b;
                }
            }
        }
    }
    let mut shape = x.shape.clone();
    shape[ax] = bins;
    shape[r - 1] = oc;
    Tensor::new(shape, Data::F64(out))?.cast(x.dtype())
}

/// A scalar integer input.
fn int_input(t: Option<&Tensor>, what: &str) -> Result<Option<i64>, String> {
    match t {
        None => Ok(None),
        Some(t) if t.numel() == 1 => Ok(Some(t.to_i64_vec()?[0])),
        Some(t) => Err(format!("{what} has shape {:?}, not one value", t.shape)),
    }
}

/// `DFT`.
#[derive(Debug)]
pub struct Dft {
    /// The axis attribute (opset 17); `None` from opset 20, where it is
    /// input 2 (default -2).
    pub axis: Option<i64>,
    /// Inverse transform.
    pub inverse: bool,
    /// One-sided spectrum (forward), or one-sided input (inverse: irfft).
    pub onesided: bool,
}

impl Kernel for Dft {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        if !x.dtype().is_floating_point() {
            return Err(format!("dtype {} (float types only)", x.dtype()));
        }
        let r = x.rank() as i64;
        let a = match self.axis {
            Some(a) => a,
            None => int_input(opt(inputs, 2), "axis")?.unwrap_or(-2),
        };
        if a < -r || a >= r {
            return Err(format!("axis {a} is out of range for rank {r}"));
        }
        let ax = a.rem_euclid(r.max(1)) as usize;
        let len = x.shape.get(ax).copied().unwrap_or(0);
        let n = match int_input(opt(inputs, 1), "dft_length")? {
            Some(n) if n <= 0 => return Err(format!("dft_length {n}")),
            Some(n) => n as usize,
            None if self.inverse && self.onesided => 2 * len.saturating_sub(1),
            None => len,
        };
        Ok(vec![transform(
            x,
            ax,
            n,
            self.onesided,
            self.inverse,
            None,
        )?])
    }
}

/// `STFT`: frames of `frame_length` samples every `frame_step`, each
/// multiplied by the window and transformed.
#[derive(Debug)]
pub struct Stft {
    /// One-sided spectrum.
    pub onesided: bool,
}

impl Kernel for Stft {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        if !x.dtype().is_floating_point() {
            return Err(format!("dtype {} (float types only)", x.dtype()));
        }
        if x.rank() != 3 {
            return Err(format!(
                "signal has shape {:?}, not [batch, length, 1 or 2]",
                x.shape
            ));
        }
        let step = int_input(opt(inputs, 1), "frame_step")?.ok_or("frame_step is missing")?;
        if step <= 0 {
            return Err(format!("frame_step {step}"));
        }
        let window = opt(inputs, 2).map(|w| w.data.to_f64_vec());
        let len = x.shape[1];
        let frame = match int_input(opt(inputs, 3), "frame_length")? {
            Some(f) if f <= 0 => return Err(format!("frame_length {f}")),
            Some(f) => f as usize,
            None => window.as_ref().map_or(len, Vec::len),
        };
        let wlen = window.as_ref().map_or(frame, Vec::len);
        if frame > len || wlen > len {
            return Err(format!(
                "frame_length {frame} (window {wlen}) is longer than the signal ({len})"
            ));
        }
        let frames = 1 + (len - frame) / step as usize;
        let (b, c) = (x.shape[0], x.shape[2]);
        let v = x.data.to_f64_vec();
        // [batch, frames, wlen, c]: each frame's samples, zero past the end.
        let mut fr = vec![0f64; b * frames * wlen * c];
        for bi in 0..b {
            for f in 0..frames {
                let begin = f * step as usize;
                for t in 0..wlen.min(len.saturating_sub(begin)) {
                    for k in 0..c {
                        fr[((bi * frames + f) * wlen + t) * c + k] =
                            v[((bi * len) + begin + t) * c + k];
                    }
                }
            }
        }
        let framed = Tensor::new(vec![b, frames, wlen, c], Data::F64(fr))?;
        let out = transform(&framed, 2, frame, self.onesided, false, window.as_deref())?;
        Ok(vec![out.cast(x.dtype())?])
    }
}

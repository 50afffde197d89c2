//! `QuantizeLinear` and `DequantizeLinear`: per-tensor, per-axis and
//! blocked scales and zero points, for the integer types (saturating,
//! rounding half to even).

use super::{KResult, Kernel, arg, axis, opt};
use crate::tensor::{Data, Tensor, strides};
use netport_tensor::DType;

/// Quantize (`true`) or dequantize.
#[derive(Debug)]
pub struct Quant {
    /// QuantizeLinear rather than DequantizeLinear.
    pub quantize: bool,
    /// The axis of per-axis and blocked scales.
    pub axis: i64,
    /// Block size (0: not blocked).
    pub block_size: usize,
    /// `output_dtype` (0/absent: from the zero point or the scale).
    pub out_dtype: Option<DType>,
}

fn range(dt: DType) -> Option<(f64, f64)> {
    Some(match dt {
        DType::UInt8 => (0.0, 255.0),
        DType::Int8 => (-128.0, 127.0),
        DType::UInt16 => (0.0, 65535.0),
        DType::Int16 => (-32768.0, 32767.0),
        DType::Int32 => (i32::MIN as f64, i32::MAX as f64),
        DType::UInt32 => (0.0, u32::MAX as f64),
        _ => return None,
    })
}

impl Kernel for Quant {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let (x, s) = (arg(inputs, 0)?, arg(inputs, 1)?);
        let zp = opt(inputs, 2);
        let r = x.rank();
        // The scale index of every element of x.
        let sidx: Vec<usize> = if s.numel() == 1 {
            vec![0; x.numel()]
        } else {
            let a = axis(self.axis, r)?;
            let xs = strides(&x.shape);
            if self.block_size == 0 {
                if s.rank() != 1 || s.numel() != x.shape[a] {
                    return Err(format!("scale {:?} for axis {a} of {:?}", s.shape, x.shape));
                }
                (0..x.numel()).map(|i| (i / xs[a]) % x.shape[a]).collect()
            } else {
                if s.rank() != r {
                    return Err(format!("blocked scale {:?} for {:?}", s.shape, x.shape));
                }
                let ss = strides(&s.shape);
                (0..x.numel())
                    .map(|i| {
                        (0..r)
                            .map(|d| {
                                let c = (i / xs[d]) % x.shape[d];
                                let c = if d == a { c / self.block_size } else { c };
                                c.min(s.shape[d].saturating_sub(1)) * ss[d]
                            })
                            .sum()
                    })
                    .collect()
            }
        };
        let sv = s.data.to_f64_vec();
        let zv = zp.map(|z| z.data.to_f64_vec());
        let zat = |i: usize| {
            zv.as_ref()
                .map_or(0.0, |z| if z.len() == 1 { z[0] } else { z[sidx[i]] })
        };
        let xv = x.data.to_f64_vec();
        if self.quantize {
            let dt = zp
                .map(|z| z.dtype())
                .or(self.out_dtype)
                .unwrap_or(DType::UInt8);
            let (lo, hi) =
                range(dt).ok_or_else(|| format!("quantizing to {dt} is not supported"))?;
            // The division in the input's precision, as the reference does
            // (a float32 quotient can round to the other side of .5).
            let f32_div = x.dtype() != DType::Float64;
            let out: Vec<f64> = (0..xv.len())
                .map(|i| {
                    let q = if f32_div {
                        (xv[i] as f32 / sv[sidx[i]] as f32) as f64
                    } else {
                        xv[i] / sv[sidx[i]]
                    };
                    (q.round_ties_even() + zat(i)).clamp(lo, hi)
                })
                .collect();
            return Ok(vec![Tensor::new(
                x.shape.clone(),
                Data::from_f64(dt, &out).ok_or("dtype")?,
            )?]);
        }
        if range(x.dtype()).is_none() {
            return Err(format!("dequantizing {} is not supported", x.dtype()));
        }
        let dt = self.out_dtype.unwrap_or(s.dtype());
        let out: Vec<f64> = (0..xv.len())
            .map(|i| (xv[i] - zat(i)) * sv[sidx[i]])
            .collect();
        Ok(vec![
            Tensor::new(x.shape.clone(), Data::F64(out))?.cast(dt)?,
        ])
    }
}

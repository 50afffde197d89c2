//! Detection post-processing: ONNX `NonMaxSuppression` (opset 10+), greedy
//! per batch and class as the operator docs and onnxruntime define it:
//! boxes above `score_threshold` (strictly), taken by descending score (the
//! lower box index first on a tie), each kept unless its IoU with a kept box
//! of the same class is above `iou_threshold` (strictly), at most
//! `max_output_boxes_per_class` per class. Computed in float64.

use super::{KResult, Kernel, arg, opt};
use crate::tensor::Tensor;

/// `NonMaxSuppression`.
#[derive(Debug)]
pub struct NonMaxSuppression {
    /// `center_point_box`: boxes as `[x_center, y_center, width, height]`
    /// instead of two corners `[y1, x1, y2, x2]`.
    pub center_point_box: bool,
}

/// A box as `(x_min, x_max, y_min, y_max)`.
fn corners(b: &[f64], center: bool) -> (f64, f64, f64, f64) {
    if center {
        let (hw, hh) = (b[2] / 2.0, b[3] / 2.0);
        (b[0] - hw, b[0] + hw, b[1] - hh, b[1] + hh)
    } else {
        (
            b[1].min(b[3]),
            b[1].max(b[3]),
            b[0].min(b[2]),
            b[0].max(b[2]),
        )
    }
}

/// Whether two boxes overlap by more than `threshold` (IoU).
fn suppresses(a: (f64, f64, f64, f64), b: (f64, f64, f64, f64), threshold: f64) -> bool {
    let (ix0, ix1) = (a.0.max(b.0), a.1.min(b.1));
    let (iy0, iy1) = (a.2.max(b.2), a.3.min(b.3));
    if ix1 <= ix0 || iy1 <= iy0 {
        return false;
    }
    let inter = (ix1 - ix0) * (iy1 - iy0);
    let area_a = (a.1 - a.0) * (a.3 - a.2);
    let area_b = (b.1 - b.0) * (b.3 - b.2);
    let union = area_a + area_b - inter;
    if inter <= 0.0 || area_a <= 0.0 || area_b <= 0.0 || union <= 0.0 {
        return false;
    }
    inter / union > threshold
}

/// The single value of an optional scalar input.
fn scalar(t: Option<&Tensor>, what: &str) -> Result<Option<f64>, String> {
    match t {
        None => Ok(None),
        Some(t) if t.numel() == 0 => Ok(None),
        Some(t) if t.numel() == 1 => Ok(Some(t.data.to_f64_vec()[0])),
        Some(t) => Err(format!("{what} has shape {:?}, not one value", t.shape)),
    }
}

impl Kernel for NonMaxSuppression {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let boxes = arg(inputs, 0)?;
        let scores = arg(inputs, 1)?;
        if boxes.rank() != 3 || boxes.shape[2] != 4 {
            return Err(format!(
                "boxes have shape {:?}, not [batches, boxes, 4]",
                boxes.shape
            ));
        }
        let (nb, n) = (boxes.shape[0], boxes.shape[1]);
        if scores.rank() != 3 || scores.shape[0] != nb || scores.shape[2] != n {
            return Err(format!(
                "scores have shape {:?}, boxes {:?}: not [{nb}, classes, {n}]",
                scores.shape, boxes.shape
            ));
        }
        let nc = scores.shape[1];
        let max_out = match opt(inputs, 2) {
            Some(t) if t.numel() == 1 => t.to_i64_vec()?[0].max(0) as usize,
            Some(t) if t.numel() > 1 => {
                return Err(format!(
                    "max_output_boxes_per_class has shape {:?}",
                    t.shape
                ));
            }
            _ => 0,
        };
        let iou = scalar(opt(inputs, 3), "iou_threshold")?.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&iou) {
            return Err(format!("iou_threshold {iou} is not in [0, 1]"));
        }
        let score_min = scalar(opt(inputs, 4), "score_threshold")?;
        let bv = boxes.data.to_f64_vec();
        let sv = scores.data.to_f64_vec();
        let mut out: Vec<i64> = Vec::new();
        for b in 0..nb {
            let bx: Vec<_> = (0..n)
                .map(|i| {
                    corners(
                        &bv[(b * n + i) * 4..(b * n + i) * 4 + 4],
                        self.center_point_box,
                    )
                })
                .collect();
            for c in 0..nc {
                let s = &sv[(b * nc + c) * n..(b * nc + c + 1) * n];
                let mut cand: Vec<usize> = (0..n)
                    .filter(|&i| score_min.is_none_or(|m| s[i] > m))
                    .collect();
                // Descending score, lower index first on a tie (stable sort).
                cand.sort_by(|&i, &j| s[j].partial_cmp(&s[i]).unwrap_or(std::cmp::Ordering::Equal));
                let mut kept: Vec<usize> = Vec::new();
                for i in cand {
                    if kept.len() >= max_out {
                        break;
                    }
                    if kept.iter().all(|&k| !suppresses(bx[i], bx[k], iou)) {
                        kept.push(i);
                        out.extend([b as i64, c as i64, i as i64]);
                    }
                }
            }
        }
        let rows = out.len() / 3;
        Ok(vec![Tensor::i64(vec![rows, 3], out)?])
    }
}

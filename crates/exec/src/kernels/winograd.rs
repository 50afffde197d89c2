//! Winograd's minimal filtering F(2x2, 3x3) for 2-D convolutions with a 3x3
//! kernel, stride 1, dilation 1 and one group (Lavin and Gray, "Fast
//! Algorithms for Convolutional Neural Networks", 2015): each 2x2 block of
//! the output is computed from a 4x4 block of the input with 16 products per
//! input/output channel pair instead of 36, as 16 matrix products (one per
//! position of the transformed 4x4 block) through [`crate::gemm`].
//!
//! The transforms only add, subtract and halve, so the result differs from
//! the direct sum by rounding alone (a few units in the last place of f32
//! relative to the magnitude of the products, well inside the tolerance of
//! the ONNX backend tests); [`Conv`](super::nn::Conv) takes this path only
//! when the output has enough 2x2 tiles for the transforms to pay off.

// The transforms index several small arrays with one counter in step; the
// iterator form of those loops would hide the formulas.
#![allow(clippy::needless_range_loop)]

use super::Float;
use crate::gemm::Layout;

/// Output tiles (2x2 blocks) below which the direct path is kept: with few
/// tiles the 16 products are too narrow to run at the kernels' speed.
pub const MIN_TILES: usize = 36;

/// The geometry of one image: `c` input channels of `h x w`, `m` output
/// channels of `oh x ow`, padding `pad_t` / `pad_l` at the top and left.
#[derive(Debug, Clone, Copy)]
pub struct Geometry {
    /// Input channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub m: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
    /// Padding at the top.
    pub pad_t: usize,
    /// Padding at the left.
    pub pad_l: usize,
}

impl Geometry {
    /// 2x2 output tiles per image.
    pub fn tiles(&self) -> usize {
        self.oh.div_ceil(2) * self.ow.div_ceil(2)
    }

    /// Scratch values [`conv3x3`] needs: the transformed input and the
    /// products, 16 matrices each.
    pub fn scratch_len(&self) -> usize {
        let t = self.tiles();
        16 * (self.c * t + self.m * t)
    }
}

/// Transforms the 3x3 weights `wt` (`m x c x 3 x 3`) into 16 matrices
/// `m x c`, matrix `xi` holding position `xi` of `G g G^T` for each pair
/// (what [`conv3x3`] takes; a Conv with constant weights keeps it).
pub fn weights<T: Float>(wt: &[T], m: usize, c: usize) -> Vec<T> {
    let half = T::of(0.5);
    let mc = m * c;
    let mut u = vec![T::ZERO; 16 * mc];
    for p in 0..mc {
        let g = &wt[p * 9..p * 9 + 9];
        // G g: 4 rows of 3.
        let mut t = [[T::ZERO; 3]; 4];
        for j in 0..3 {
            let (a, b, e) = (g[j], g[3 + j], g[6 + j]);
            t[0][j] = a;
            t[1][j] = (a + b + e) * half;
            t[2][j] = (a - b + e) * half;
            t[3][j] = e;
        }
        // (G g) G^T: 4 x 4.
        for (i, row) in t.iter().enumerate() {
            let (a, b, e) = (row[0], row[1], row[2]);
            let vals = [a, (a + b + e) * half, (a - b + e) * half, e];
            for (j, v) in vals.into_iter().enumerate() {
                u[(i * 4 + j) * mc + p] = v;
            }
        }
    }
    u
}

/// Transforms the input of one image into `v`: 16 matrices `c x tiles`,
/// `v[xi]` holding position `xi` of `B^T d B` for each 4x4 input block `d`
/// (zeros outside the image). Written as loops over whole rows of tiles so
/// that they vectorize: the row transform `B^T d` over a zero-padded copy of
/// the 4 input rows, then the column transform tile by tile.
fn input<T: Float>(x: &[T], g: &Geometry, v: &mut [T]) {
    let (tw_n, th_n) = (g.ow.div_ceil(2), g.oh.div_ceil(2));
    let t_n = tw_n * th_n;
    let ct = g.c * t_n;
    // Padded row width: every tile reads columns 2*tw .. 2*tw + 4.
    let pw = 2 * tw_n + 2;
    let mut rows = vec![T::ZERO; 4 * pw];
    let mut r = vec![T::ZERO; 4 * pw];
    for ci in 0..g.c {
        let xc = &x[ci * g.h * g.w..(ci + 1) * g.h * g.w];
        for th in 0..th_n {
            // The 4 input rows of this row of tiles, padded with zeros.
            for (i, row) in rows.chunks_exact_mut(pw).enumerate() {
                row.fill(T::ZERO);
                let y = (2 * th + i) as isize - g.pad_t as isize;
                if y < 0 || y as usize >= g.h {
                    continue;
                }
                let src = &xc[y as usize * g.w..(y as usize + 1) * g.w];
                // Column xx of the image lands at xx + pad_l.
                let lo = g.pad_l.min(pw);
                let n = g.w.min(pw - lo);
                row[lo..lo + n].copy_from_slice(&src[..n]);
            }
            // B^T d, for every column at once.
            {
                let (d0, rest) = rows.split_at(pw);
                let (d1, rest) = rest.split_at(pw);
                let (d2, d3) = rest.split_at(pw);
                let (r0, rest) = r.split_at_mut(pw);
                let (r1, rest) = rest.split_at_mut(pw);
                let (r2, r3) = rest.split_at_mut(pw);
                for k in 0..pw {
                    r0[k] = d0[k] - d2[k];
                    r1[k] = d1[k] + d2[k];
                    r2[k] = d2[k] - d1[k];
                    r3[k] = d1[k] - d3[k];
                }
            }
            // (B^T d) B, tile by tile, into the 16 matrices.
            let col0 = ci * t_n + th * tw_n;
            for (i, ri) in r.chunks_exact(pw).enumerate() {
                let (v0, rest) = v[(i * 4) * ct..].split_at_mut(ct);
                let (v1, rest) = rest.split_at_mut(ct);
                let (v2, rest) = rest.split_at_mut(ct);
                let v3 = &mut rest[..ct];
                let (v0, v1, v2, v3) = (
                    &mut v0[col0..col0 + tw_n],
                    &mut v1[col0..col0 + tw_n],
                    &mut v2[col0..col0 + tw_n],
                    &mut v3[col0..col0 + tw_n],
                );
                for tw in 0..tw_n {
                    let q = &ri[2 * tw..2 * tw + 4];
                    v0[tw] = q[0] - q[2];
                    v1[tw] = q[1] + q[2];
                    v2[tw] = q[2] - q[1];
                    v3[tw] = q[1] - q[3];
                }
            }
        }
    }
}

/// Transforms the 16 products back (`A^T M A`) into `out` (`m x oh x ow`),
/// adding the bias and applying Relu when asked; a row of tiles at a time,
/// like [`input`].
fn output<T: Float>(p: &[T], g: &Geometry, bias: Option<&[T]>, relu: bool, out: &mut [T]) {
    let (tw_n, th_n) = (g.ow.div_ceil(2), g.oh.div_ceil(2));
    let t_n = tw_n * th_n;
    let mt = g.m * t_n;
    // A^T M: 2 rows x 4 columns per tile, each as a row of tiles.
    let mut s = vec![T::ZERO; 8 * tw_n];
    let mut line = vec![T::ZERO; 2 * tw_n];
    for mi in 0..g.m {
        let b = bias.map_or(T::ZERO, |b| b[mi]);
        let om = &mut out[mi * g.oh * g.ow..(mi + 1) * g.oh * g.ow];
        for th in 0..th_n {
            let col0 = mi * t_n + th * tw_n;
            let at = |xi: usize| &p[xi * mt + col0..xi * mt + col0 + tw_n];
            for j in 0..4 {
                let (m0, m1, m2, m3) = (at(j), at(4 + j), at(8 + j), at(12 + j));
                let (s0, s1) = s[2 * j * tw_n..(2 * j + 2) * tw_n].split_at_mut(tw_n);
                for t in 0..tw_n {
                    s0[t] = m0[t] + m1[t] + m2[t];
                    s1[t] = m1[t] - m2[t] - m3[t];
                }
            }
            for i in 0..2 {
                let y = 2 * th + i;
                if y >= g.oh {
                    continue;
                }
                let col = |j: usize| &s[(2 * j + i) * tw_n..(2 * j + i + 1) * tw_n];
                let (c0, c1, c2, c3) = (col(0), col(1), col(2), col(3));
                for (t, pair) in line.chunks_exact_mut(2).enumerate() {
                    pair[0] = c0[t] + c1[t] + c2[t] + b;
                    pair[1] = c1[t] - c2[t] - c3[t] + b;
                }
                let dst = &mut om[y * g.ow..(y + 1) * g.ow];
                dst.copy_from_slice(&line[..g.ow]);
                if relu {
                    super::relu_in_place(dst);
                }
            }
        }
    }
}

/// One image: `x` (`c x h x w`) convolved with the weights whose transform
/// is `u` ([`weights`]) into `out` (`m x oh x ow`), using `scratch`
/// ([`Geometry::scratch_len`] values, contents ignored).
pub fn conv3x3<T: Float>(
    x: &[T],
    u: &[T],
    g: &Geometry,
    bias: Option<&[T]>,
    relu: bool,
    scratch: &mut [T],
    out: &mut [T],
) -> Result<(), String> {
    let t_n = g.tiles();
    if u.len() != 16 * g.m * g.c {
        return Err(format!(
            "{} transformed weights for {} x {} channels",
            u.len(),
            g.m,
            g.c
        ));
    }
    let (v, rest) = scratch.split_at_mut(16 * g.c * t_n);
    let p = &mut rest[..16 * g.m * t_n];
    input(x, g, v);
    for xi in 0..16 {
        T::gemm(
            T::ONE,
            &u[xi * g.m * g.c..(xi + 1) * g.m * g.c],
            Layout::row_major(g.m, g.c),
            &v[xi * g.c * t_n..(xi + 1) * g.c * t_n],
            Layout::row_major(g.c, t_n),
            T::ZERO,
            &mut p[xi * g.m * t_n..(xi + 1) * g.m * t_n],
            Layout::row_major(g.m, t_n),
        )?;
    }
    output(p, g, bias, relu, out);
    Ok(())
}

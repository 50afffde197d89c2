//! The one door to the `matrixmultiply` crate: safe general matrix multiply
//! for f32 and f64 over strided slices.
//!
//! `matrixmultiply::{sgemm, dgemm}` take raw pointers, so this module is the
//! crate's only `unsafe` code: each call first checks, with overflow-checked
//! arithmetic, that the furthest element every matrix can reach lies inside
//! its slice, and that the output does not alias the inputs (it is a
//! `&mut` borrow, so it cannot).
#![allow(unsafe_code)]

/// A strided matrix layout: rows, columns, row stride, column stride (in
/// elements).
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Row count.
    pub rows: usize,
    /// Column count.
    pub cols: usize,
    /// Step between rows.
    pub row_stride: usize,
    /// Step between columns.
    pub col_stride: usize,
}

impl Layout {
    /// A row-major `rows x cols` matrix.
    pub fn row_major(rows: usize, cols: usize) -> Layout {
        Layout {
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The same storage read as its transpose.
    pub fn t(self) -> Layout {
        Layout {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    fn fits(&self, len: usize) -> bool {
        if self.rows == 0 || self.cols == 0 {
            return true;
        }
        let last = (self.rows - 1).checked_mul(self.row_stride).and_then(|a| {
            (self.cols - 1)
                .checked_mul(self.col_stride)
                .and_then(|b| a.checked_add(b))
        });
        matches!(last, Some(l) if l < len)
            && isize::try_from(self.row_stride).is_ok()
            && isize::try_from(self.col_stride).is_ok()
    }
}

fn check(
    a: &Layout,
    al: usize,
    b: &Layout,
    bl: usize,
    c: &Layout,
    cl: usize,
) -> Result<(), String> {
    if a.rows != c.rows || b.cols != c.cols || a.cols != b.rows {
        return Err(format!(
            "matrix product of {}x{} and {}x{} into {}x{}",
            a.rows, a.cols, b.rows, b.cols, c.rows, c.cols
        ));
    }
    if !a.fits(al) || !b.fits(bl) || !c.fits(cl) {
        return Err("a matrix layout reaches past its buffer".into());
    }
    Ok(())
}

macro_rules! gemm_fn {
    ($name:ident, $t:ty, $mm:path) => {
        /// `c = alpha * a @ b + beta * c` over strided layouts. With
        /// `beta == 0` the old contents of `c` are ignored (NaN included).
        #[allow(clippy::too_many_arguments)]
        pub fn $name(
            alpha: $t,
            a: &[$t],
            la: Layout,
            b: &[$t],
            lb: Layout,
            beta: $t,
            c: &mut [$t],
            lc: Layout,
        ) -> Result<(), String> {
            check(&la, a.len(), &lb, b.len(), &lc, c.len())?;
            if lc.rows == 0 || lc.cols == 0 {
                return Ok(());
            }
            if la.cols == 0 {
                for i in 0..lc.rows {
                    for j in 0..lc.cols {
                        let x = &mut c[i * lc.row_stride + j * lc.col_stride];
                        *x = if beta == 0.0 { 0.0 } else { *x * beta };
                    }
                }
                return Ok(());
            }
            // SAFETY: `check` proved that every element each layout reaches
            // lies inside its slice and that strides fit in isize; `c` is a
            // unique borrow, so it does not overlap `a` or `b`.
            unsafe {
                $mm(
                    la.rows,
                    la.cols,
                    lb.cols,
                    alpha,
                    a.as_ptr(),
                    la.row_stride as isize,
                    la.col_stride as isize,
                    b.as_ptr(),
                    lb.row_stride as isize,
                    lb.col_stride as isize,
                    beta,
                    c.as_mut_ptr(),
                    lc.row_stride as isize,
                    lc.col_stride as isize,
                );
            }
            Ok(())
        }
    };
}

gemm_fn!(sgemm, f32, matrixmultiply::sgemm);
gemm_fn!(dgemm, f64, matrixmultiply::dgemm);

//! The one door to the `matrixmultiply` crate: safe general matrix multiply
//! for f32 and f64 over strided slices, on one thread or several.
//!
//! `matrixmultiply::{sgemm, dgemm}` take raw pointers, so this module is the
//! crate's only `unsafe` code: each call first checks, with overflow-checked
//! arithmetic, that the furthest element every matrix can reach lies inside
//! its slice, and that the output does not alias the inputs (it is a
//! `&mut` borrow, so it cannot).
//!
//! Intra-op threads: [`with_threads`] sets how many threads the products
//! made on this thread may use (a [`Plan`](crate::Plan) sets it around its
//! run). A product large enough to be worth it is cut into column blocks of
//! `c` (or row blocks when `c` is narrow), one per thread, each a product of
//! its own over the same `k`: every element of `c` is summed by the same
//! kernel in the same order whatever the thread count, so results do not
//! depend on it.
#![allow(unsafe_code)]

use std::cell::Cell;

thread_local! {
    static THREADS: Cell<usize> = const { Cell::new(1) };
}

/// Runs `f` with products on this thread using up to `threads` threads
/// (0 is taken as 1), then restores the previous setting.
pub fn with_threads<R>(threads: usize, f: impl FnOnce() -> R) -> R {
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            THREADS.with(|t| t.set(self.0));
        }
    }
    let _restore = Restore(THREADS.with(|t| t.replace(threads.max(1))));
    f()
}

/// The thread count products made on this thread may use.
pub fn threads() -> usize {
    THREADS.with(Cell::get)
}

/// Multiply-adds below which a product stays on one thread (spawning costs
/// tens of microseconds).
const PARALLEL_MIN_MACS: usize = 1 << 21;
/// Columns (or rows) of `c` per block at least, a multiple of the kernels'
/// register tiles.
const BLOCK_MIN: usize = 32;

/// How a product is cut: `(along_columns, block)`, or `None` for one thread.
fn split(m: usize, k: usize, n: usize, threads: usize) -> Option<(bool, usize)> {
    if threads < 2 || m.saturating_mul(k).saturating_mul(n) < PARALLEL_MIN_MACS {
        return None;
    }
    let (cols, len) = if n >= m { (true, n) } else { (false, m) };
    let block = len.div_ceil(threads).next_multiple_of(BLOCK_MIN);
    (block < len).then_some((cols, block))
}

/// A raw pointer handed to a worker thread.
#[derive(Clone, Copy)]
struct SendPtr<T>(*mut T);
// SAFETY: the pointer is only used for the disjoint block of `c` that its
// worker owns for the duration of a scoped thread (see `gemm_fn`).
unsafe impl<T: Send> Send for SendPtr<T> {}

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
            let (m, k, n) = (la.rows, la.cols, lb.cols);
            // One block: rows r0..r1 and columns c0..c1 of `c`.
            // SAFETY (for both calls below): `check` proved that every
            // element each layout reaches lies inside its slice and that
            // strides fit in isize; a block only moves the start of `a`
            // (rows), `b` (columns) and `c` inside those ranges. `c` is a
            // unique borrow, so it does not overlap `a` or `b`, and blocks
            // are disjoint ranges of rows or columns, so no two threads
            // write the same element (layouts whose rows or columns overlap
            // in memory are cut only along the other dimension: see below).
            let run = |r0: usize, r1: usize, c0: usize, c1: usize, cp: SendPtr<$t>| unsafe {
                $mm(
                    r1 - r0,
                    k,
                    c1 - c0,
                    alpha,
                    a.as_ptr().add(r0 * la.row_stride),
                    la.row_stride as isize,
                    la.col_stride as isize,
                    b.as_ptr().add(c0 * lb.col_stride),
                    lb.row_stride as isize,
                    lb.col_stride as isize,
                    beta,
                    cp.0.add(r0 * lc.row_stride + c0 * lc.col_stride),
                    lc.row_stride as isize,
                    lc.col_stride as isize,
                );
            };
            let cp = SendPtr(c.as_mut_ptr());
            // Blocks write disjoint memory only when no two elements of `c`
            // share an address: rows laid one after another (or columns);
            // any other layout stays on one thread.
            let disjoint = (lc.col_stride >= 1
                && lc.row_stride >= lc.cols.saturating_mul(lc.col_stride))
                || (lc.row_stride >= 1 && lc.col_stride >= lc.rows.saturating_mul(lc.row_stride));
            match split(m, k, n, threads()).filter(|_| disjoint) {
                None => run(0, m, 0, n, cp),
                Some((cols, block)) => std::thread::scope(|s| {
                    let len = if cols { n } else { m };
                    let mut starts = (0..len).step_by(block);
                    let first = starts.next().unwrap_or(0);
                    for b0 in starts {
                        let b1 = (b0 + block).min(len);
                        let run = &run;
                        s.spawn(move || {
                            if cols {
                                run(0, m, b0, b1, cp)
                            } else {
                                run(b0, b1, 0, n, cp)
                            }
                        });
                    }
                    let b1 = (first + block).min(len);
                    if cols {
                        run(0, m, first, b1, cp)
                    } else {
                        run(first, b1, 0, n, cp)
                    }
                }),
            }
            Ok(())
        }
    };
}

gemm_fn!(sgemm, f32, matrixmultiply::sgemm);
gemm_fn!(dgemm, f64, matrixmultiply::dgemm);

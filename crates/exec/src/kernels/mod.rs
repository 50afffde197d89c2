//! The kernels both front ends share: each is a struct holding its
//! parameters (already read from the node's attributes or the op's
//! arguments) and implementing [`Kernel`]. Front ends translate their
//! format's op definitions into these parameters; kernels know nothing of
//! ONNX or Caffe2.
//!
//! float16 and bfloat16 are computed in float32 and rounded back
//! ([`widen`] / [`narrow`]), float64 in float64.

pub mod attention;
pub mod detection;
pub mod einsum;
pub mod elementwise;
pub mod grid;
pub mod loss;
pub mod nn;
pub mod quant;
pub mod reduce;
pub mod resize;
pub mod rnn;
pub mod shape;
pub mod spectral;
pub mod unique;
pub mod winograd;

use crate::tensor::{Data, Tensor, numel};
use netport_tensor::DType;
use std::borrow::Cow;

/// What a kernel returns: its outputs, or a message (the executor adds the
/// node's name and op).
pub type KResult = Result<Vec<Tensor>, String>;

/// One computation step with fixed parameters.
pub trait Kernel: std::fmt::Debug + Send + Sync {
    /// Computes the outputs from the inputs (`None` for an omitted optional
    /// input).
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult;

    /// Takes a `Relu` that reads this kernel's only output into the kernel
    /// itself (the plan's fusion pass calls it): returns true when the
    /// kernel now applies Relu's definition to its output, false (the
    /// default) when it cannot, and the plan keeps the Relu step.
    fn fuse_relu(&mut self) -> bool {
        false
    }

    /// Precomputes what depends only on constant inputs (the plan calls it
    /// once, when the model is loaded): `consts[i]` is input `i` when it is
    /// a constant of the plan that no step writes, else `None`. The
    /// default keeps nothing; a kernel that keeps something must still
    /// compute the same numbers when it runs on other inputs.
    fn prepare(&mut self, consts: &[Option<&Tensor>]) {
        let _ = consts;
    }
}

/// ONNX/Caffe2 `Relu` on float values in place: `max(x, 0)`, NaN kept,
/// -0 made +0 (what [`elementwise::unary`] computes).
pub fn relu_in_place<T: Float>(v: &mut [T]) {
    for x in v {
        if *x <= T::ZERO {
            *x = T::ZERO;
        }
    }
}

/// Input `i`, which must be present.
pub fn arg<'a>(inputs: &[Option<&'a Tensor>], i: usize) -> Result<&'a Tensor, String> {
    inputs
        .get(i)
        .copied()
        .flatten()
        .ok_or_else(|| format!("input {i} is missing"))
}

/// Input `i` if given.
pub fn opt<'a>(inputs: &[Option<&'a Tensor>], i: usize) -> Option<&'a Tensor> {
    inputs.get(i).copied().flatten()
}

/// float16/bfloat16 as float32 for computing; other tensors as they are.
pub fn widen(t: &Tensor) -> Cow<'_, Tensor> {
    match t.dtype() {
        DType::Float16 | DType::BFloat16 => Cow::Owned(Tensor {
            shape: t.shape.clone(),
            data: Data::F32(t.to_f32_vec()),
        }),
        _ => Cow::Borrowed(t),
    }
}

/// Rounds a float32 result back to the dtype the inputs had.
pub fn narrow(t: Tensor, to: DType) -> Result<Tensor, String> {
    if t.dtype() == to { Ok(t) } else { t.cast(to) }
}

/// Floating-point element types the float kernels are written over.
pub trait Float:
    Copy
    + PartialOrd
    + Default
    + Send
    + Sync
    + std::fmt::Debug
    + 'static
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
    + std::ops::AddAssign
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// -inf.
    const NEG_INF: Self;
    /// +inf.
    const INF: Self;
    /// From f64, rounded.
    fn of(x: f64) -> Self;
    /// To f64.
    fn f64(self) -> f64;
    /// Square root.
    fn sqrt(self) -> Self;
    /// e^x.
    fn exp(self) -> Self;
    /// ln x.
    fn ln(self) -> Self;
    /// |x|.
    fn abs(self) -> Self;
    /// tanh x.
    fn tanh(self) -> Self;
    /// NaN test.
    fn is_nan(self) -> bool;
    /// The values of a float tensor of this precision (float16/bfloat16
    /// widened for f32), or an error naming the dtype.
    fn read(t: &Tensor) -> Result<Cow<'_, [Self]>, String>;
    /// Wraps a result as tensor data.
    fn wrap(v: Vec<Self>) -> Data;
    /// Runs `f` on a scratch buffer of `len` values (contents unspecified)
    /// kept by this thread between calls, so a hot loop does not allocate
    /// (and zero) a large buffer on every call. Not reentrant: `f` must not
    /// ask for the scratch buffer again.
    fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R;
    /// `c = alpha * a @ b + beta * c`.
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        alpha: Self,
        a: &[Self],
        la: crate::gemm::Layout,
        b: &[Self],
        lb: crate::gemm::Layout,
        beta: Self,
        c: &mut [Self],
        lc: crate::gemm::Layout,
    ) -> Result<(), String>;
}

macro_rules! impl_float {
    ($t:ty, $variant:ident, $gemm:path) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const NEG_INF: Self = <$t>::NEG_INFINITY;
            const INF: Self = <$t>::INFINITY;
            fn of(x: f64) -> Self {
                x as $t
            }
            fn f64(self) -> f64 {
                self as f64
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            fn read(t: &Tensor) -> Result<Cow<'_, [Self]>, String> {
                match &t.data {
                    Data::$variant(v) => Ok(Cow::Borrowed(v)),
                    other if other.dtype().is_floating_point() => Ok(Cow::Owned(
                        t.data.to_f64_vec().into_iter().map(|x| x as $t).collect(),
                    )),
                    other => Err(format!("expected a float tensor, found {}", other.dtype())),
                }
            }
            fn wrap(v: Vec<Self>) -> Data {
                Data::$variant(v)
            }
            fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R {
                thread_local! {
                    static SCRATCH: std::cell::RefCell<Vec<$t>> =
                        const { std::cell::RefCell::new(Vec::new()) };
                }
                SCRATCH.with(|cell| match cell.try_borrow_mut() {
                    Ok(mut v) => {
                        if v.len() < len {
                            v.resize(len, 0.0);
                        }
                        f(&mut v[..len])
                    }
                    // Already in use further up this thread's stack (a
                    // kernel inside a control-flow body): a buffer of its own.
                    Err(_) => f(&mut vec![0.0; len]),
                })
            }
            fn gemm(
                alpha: Self,
                a: &[Self],
                la: crate::gemm::Layout,
                b: &[Self],
                lb: crate::gemm::Layout,
                beta: Self,
                c: &mut [Self],
                lc: crate::gemm::Layout,
            ) -> Result<(), String> {
                $gemm(alpha, a, la, b, lb, beta, c, lc)
            }
        }
    };
}

impl_float!(f32, F32, crate::gemm::sgemm);
impl_float!(f64, F64, crate::gemm::dgemm);

/// Runs `$body` with `$T` the compute type for a float dtype (f32 for
/// float32/float16/bfloat16, f64 for float64); other dtypes return an error
/// from the enclosing function.
#[macro_export]
#[doc(hidden)]
macro_rules! by_float {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            netport_tensor::DType::Float32
            | netport_tensor::DType::Float16
            | netport_tensor::DType::BFloat16 => {
                type $T = f32;
                $body
            }
            netport_tensor::DType::Float64 => {
                type $T = f64;
                $body
            }
            other => return Err(format!("dtype {other} is not supported (float types only)")),
        }
    };
}

/// A float result of compute type `T` as a tensor of `dtype` (rounded back
/// for float16/bfloat16).
pub fn float_out<T: Float>(dtype: DType, shape: Vec<usize>, v: Vec<T>) -> Result<Tensor, String> {
    let t = Tensor::new(shape, T::wrap(v))?;
    narrow(t, dtype)
}

/// The shape two shapes broadcast to (numpy rules).
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>, String> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for (i, o) in out.iter_mut().enumerate() {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        *o = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(format!("shapes {a:?} and {b:?} do not broadcast"));
        };
    }
    Ok(out)
}

/// For each element of `out` (row-major), the offset of the element of a
/// tensor of shape `shape` that broadcasts to it.
pub fn broadcast_offsets(shape: &[usize], out: &[usize]) -> Result<Vec<usize>, String> {
    let n = numel(out).ok_or("shape overflow")?;
    if shape.len() > out.len() {
        return Err(format!("shape {shape:?} does not broadcast to {out:?}"));
    }
    let pad = out.len() - shape.len();
    let in_strides = crate::tensor::strides(shape);
    let mut st = vec![0usize; out.len()];
    for i in 0..shape.len() {
        let (d, o) = (shape[i], out[pad + i]);
        if d == o {
            st[pad + i] = in_strides[i];
        } else if d != 1 {
            return Err(format!("shape {shape:?} does not broadcast to {out:?}"));
        }
    }
    let mut offs = Vec::with_capacity(n);
    if n == 0 {
        return Ok(offs);
    }
    let rank = out.len();
    if rank == 0 {
        offs.push(0);
        return Ok(offs);
    }
    let mut idx = vec![0usize; rank];
    let last = rank - 1;
    let mut base = 0usize;
    loop {
        for j in 0..out[last] {
            offs.push(base + j * st[last]);
        }
        // Advance the outer index.
        let mut d = last;
        loop {
            if d == 0 {
                return Ok(offs);
            }
            d -= 1;
            idx[d] += 1;
            base += st[d];
            if idx[d] < out[d] {
                break;
            }
            base -= st[d] * idx[d];
            idx[d] = 0;
        }
    }
}

/// Applies `f` elementwise to two broadcast inputs.
pub fn broadcast2<A: Copy, B: Copy, O>(
    a: &[A],
    sa: &[usize],
    b: &[B],
    sb: &[usize],
    f: impl Fn(A, B) -> O,
) -> Result<(Vec<O>, Vec<usize>), String> {
    let shape = broadcast_shape(sa, sb)?;
    if sa == sb {
        return Ok((a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect(), shape));
    }
    let n = numel(&shape).ok_or("shape overflow")?;
    if b.len() == 1 && a.len() == n {
        let y = b[0];
        return Ok((a.iter().map(|&x| f(x, y)).collect(), shape));
    }
    if a.len() == 1 && b.len() == n {
        let x = a[0];
        return Ok((b.iter().map(|&y| f(x, y)).collect(), shape));
    }
    let oa = broadcast_offsets(sa, &shape)?;
    let ob = broadcast_offsets(sb, &shape)?;
    Ok((
        oa.iter().zip(&ob).map(|(&i, &j)| f(a[i], b[j])).collect(),
        shape,
    ))
}

/// Gathers elements of `v` at `offsets`.
pub fn gather_offsets<T: Copy>(v: &[T], offsets: &[usize]) -> Vec<T> {
    offsets.iter().map(|&o| v[o]).collect()
}

/// An axis given as a possibly negative number, checked against `rank`.
pub fn axis(a: i64, rank: usize) -> Result<usize, String> {
    let r = rank as i64;
    let v = if a < 0 { a + r } else { a };
    if v < 0 || v >= r.max(1) && !(rank == 0 && v == 0) {
        return Err(format!("axis {a} is out of range for rank {rank}"));
    }
    Ok(v as usize)
}

/// A dimension given as i64, refused when negative.
pub fn dim(d: i64) -> Result<usize, String> {
    usize::try_from(d).map_err(|_| format!("dimension {d} is negative"))
}

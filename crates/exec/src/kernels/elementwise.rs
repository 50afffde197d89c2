//! Elementwise kernels: unary math and activations, binary arithmetic and
//! comparisons with numpy broadcasting, variadic Sum/Max/Min/Mean, Clip,
//! Where and Cast.

use super::{
    KResult, Kernel, arg, broadcast_offsets, broadcast_shape, broadcast2, narrow, opt, widen,
};
use crate::tensor::{Data, Tensor};
use netport_tensor::DType;

/// Numeric element types of the binary kernels.
pub trait Num: Copy + PartialOrd + Default + Send + Sync + 'static {
    /// a + b (wrapping for integers).
    fn add(self, o: Self) -> Self;
    /// a - b (wrapping for integers).
    fn sub(self, o: Self) -> Self;
    /// a * b (wrapping for integers).
    fn mul(self, o: Self) -> Self;
    /// a / b (truncating for integers; division by zero is an error there).
    fn div(self, o: Self) -> Result<Self, String>;
    /// Remainder: `fmod` C-style (sign of the dividend), else Python-style
    /// (sign of the divisor).
    fn rem(self, o: Self, fmod: bool) -> Result<Self, String>;
    /// a ^ b.
    fn pow(self, o: Self) -> Self;
    /// The larger (NaN propagates).
    fn max2(self, o: Self) -> Self;
    /// The smaller (NaN propagates).
    fn min2(self, o: Self) -> Self;
    /// As f64.
    fn f64(self) -> f64;
}

macro_rules! impl_num_float {
    ($t:ty) => {
        impl Num for $t {
            fn add(self, o: Self) -> Self {
                self + o
            }
            fn sub(self, o: Self) -> Self {
                self - o
            }
            fn mul(self, o: Self) -> Self {
                self * o
            }
            fn div(self, o: Self) -> Result<Self, String> {
                Ok(self / o)
            }
            fn rem(self, o: Self, fmod: bool) -> Result<Self, String> {
                let r = self % o;
                if fmod || r == 0.0 || (r < 0.0) == (o < 0.0) {
                    Ok(r)
                } else {
                    Ok(r + o)
                }
            }
            fn pow(self, o: Self) -> Self {
                self.powf(o)
            }
            fn max2(self, o: Self) -> Self {
                if self.is_nan() || o.is_nan() {
                    <$t>::NAN
                } else {
                    self.max(o)
                }
            }
            fn min2(self, o: Self) -> Self {
                if self.is_nan() || o.is_nan() {
                    <$t>::NAN
                } else {
                    self.min(o)
                }
            }
            fn f64(self) -> f64 {
                self as f64
            }
        }
    };
}
impl_num_float!(f32);
impl_num_float!(f64);

macro_rules! impl_num_int {
    ($t:ty) => {
        impl Num for $t {
            fn add(self, o: Self) -> Self {
                self.wrapping_add(o)
            }
            fn sub(self, o: Self) -> Self {
                self.wrapping_sub(o)
            }
            fn mul(self, o: Self) -> Self {
                self.wrapping_mul(o)
            }
            fn div(self, o: Self) -> Result<Self, String> {
                if o == 0 {
                    return Err(format!("integer division of {self} by zero"));
                }
                Ok(self.wrapping_div(o))
            }
            fn rem(self, o: Self, fmod: bool) -> Result<Self, String> {
                if o == 0 {
                    return Err(format!("integer remainder of {self} by zero"));
                }
                let r = self.wrapping_rem(o);
                #[allow(unused_comparisons)]
                let fix = !fmod && r != 0 && ((r < 0) != (o < 0));
                Ok(if fix { r.wrapping_add(o) } else { r })
            }
            fn pow(self, o: Self) -> Self {
                (self as f64).powf(o as f64) as i64 as $t
            }
            fn max2(self, o: Self) -> Self {
                if self >= o { self } else { o }
            }
            fn min2(self, o: Self) -> Self {
                if self <= o { self } else { o }
            }
            fn f64(self) -> f64 {
                self as f64
            }
        }
    };
}
impl_num_int!(i8);
impl_num_int!(i16);
impl_num_int!(i32);
impl_num_int!(i64);
impl_num_int!(u8);
impl_num_int!(u16);
impl_num_int!(u32);
impl_num_int!(u64);

/// Binary arithmetic ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Mod { fmod: bool },
    Max,
    Min,
}

impl BinOp {
    fn apply<T: Num>(self, a: T, b: T) -> Result<T, String> {
        Ok(match self {
            BinOp::Add => a.add(b),
            BinOp::Sub => a.sub(b),
            BinOp::Mul => a.mul(b),
            BinOp::Div => a.div(b)?,
            BinOp::Pow => a.pow(b),
            BinOp::Mod { fmod } => a.rem(b, fmod)?,
            BinOp::Max => a.max2(b),
            BinOp::Min => a.min2(b),
        })
    }
}

fn bin_vec<T: Num>(
    op: BinOp,
    a: &[T],
    sa: &[usize],
    b: &[T],
    sb: &[usize],
) -> Result<(Vec<T>, Vec<usize>), String> {
    let (v, shape) = broadcast2(a, sa, b, sb, |x, y| op.apply(x, y))?;
    Ok((v.into_iter().collect::<Result<Vec<_>, _>>()?, shape))
}

/// Applies a binary op to two tensors of the same dtype, broadcasting.
pub fn binary(op: BinOp, a: &Tensor, b: &Tensor) -> Result<Tensor, String> {
    let orig = a.dtype();
    if orig != b.dtype() && op != BinOp::Pow {
        return Err(format!(
            "inputs have different dtypes {} and {}",
            a.dtype(),
            b.dtype()
        ));
    }
    let a = widen(a);
    let b = if b.dtype() != a.dtype() {
        std::borrow::Cow::Owned(b.cast(a.dtype())?)
    } else {
        widen(b)
    };
    macro_rules! go {
        ($($v:ident),*) => {
            match (&a.data, &b.data) {
                $((Data::$v(x), Data::$v(y)) => {
                    let (v, shape) = bin_vec(op, x, &a.shape, y, &b.shape)?;
                    Tensor::new(shape, Data::$v(v))?
                })*
                _ => return Err(format!("{op:?} is not defined for {}", a.dtype())),
            }
        };
    }
    let t = go!(F32, F64, I8, I16, I32, I64, U8, U16, U32, U64);
    narrow(t, orig)
}

/// A binary arithmetic kernel (`Add`, `Sub`, `Mul`, `Div`, `Pow`, `Mod`,
/// and two-input `Max`/`Min`).
#[derive(Debug)]
pub struct Binary(pub BinOp);

impl Kernel for Binary {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        Ok(vec![binary(self.0, arg(inputs, 0)?, arg(inputs, 1)?)?])
    }
}

/// Variadic `Sum`, `Max`, `Min` (a fold of the binary op) and `Mean`.
#[derive(Debug)]
pub struct Variadic {
    /// The op folded over the inputs.
    pub op: BinOp,
    /// Divide by the input count at the end (`Mean`).
    pub mean: bool,
}

impl Kernel for Variadic {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let mut acc = arg(inputs, 0)?.clone();
        for i in 1..inputs.len() {
            acc = binary(self.op, &acc, arg(inputs, i)?)?;
        }
        if self.mean {
            let n = Tensor::scalar(Data::F64(vec![inputs.len() as f64])).cast(acc.dtype())?;
            acc = binary(BinOp::Div, &acc, &n)?;
        }
        Ok(vec![acc])
    }
}

/// Comparison and logical ops (bool results).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum CmpOp {
    Equal,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    And,
    Or,
    Xor,
}

/// A comparison (any numeric dtype or bool) or logical (bool) kernel.
#[derive(Debug)]
pub struct Compare(pub CmpOp);

impl Kernel for Compare {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let (a, b) = (arg(inputs, 0)?, arg(inputs, 1)?);
        if a.dtype() != b.dtype() {
            return Err(format!(
                "inputs have different dtypes {} and {}",
                a.dtype(),
                b.dtype()
            ));
        }
        let op = self.0;
        let (a, b) = (widen(a), widen(b));
        fn cmp<T: PartialOrd + Copy>(op: CmpOp, x: T, y: T) -> bool {
            match op {
                CmpOp::Equal => x == y,
                CmpOp::Less => x < y,
                CmpOp::LessOrEqual => x <= y,
                CmpOp::Greater => x > y,
                CmpOp::GreaterOrEqual => x >= y,
                _ => false,
            }
        }
        let logical = matches!(op, CmpOp::And | CmpOp::Or | CmpOp::Xor);
        macro_rules! go {
            ($($v:ident),*) => {
                match (&a.data, &b.data) {
                    (Data::Bool(x), Data::Bool(y)) if logical => broadcast2(x, &a.shape, y, &b.shape, |p, q| match op {
                        CmpOp::And => p && q,
                        CmpOp::Or => p || q,
                        _ => p ^ q,
                    })?,
                    _ if logical => return Err(format!("{op:?} needs bool inputs, found {}", a.dtype())),
                    $((Data::$v(x), Data::$v(y)) => broadcast2(x, &a.shape, y, &b.shape, |p, q| cmp(op, p, q))?,)*
                    _ => return Err(format!("{op:?} is not defined for {}", a.dtype())),
                }
            };
        }
        let (v, shape) = go!(F32, F64, I8, I16, I32, I64, U8, U16, U32, U64, Bool);
        Ok(vec![Tensor::new(shape, Data::Bool(v))?])
    }
}

/// Bitwise ops on integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum BitOp {
    And,
    Or,
    Xor,
    ShiftLeft,
    ShiftRight,
}

/// A bitwise kernel (`BitwiseAnd/Or/Xor`, `BitShift`).
#[derive(Debug)]
pub struct Bitwise(pub BitOp);

impl Kernel for Bitwise {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let (a, b) = (arg(inputs, 0)?, arg(inputs, 1)?);
        let op = self.0;
        macro_rules! go {
            ($($v:ident),*) => {
                match (&a.data, &b.data) {
                    $((Data::$v(x), Data::$v(y)) => {
                        let (v, shape) = broadcast2(x, &a.shape, y, &b.shape, |p, q| match op {
                            BitOp::And => p & q,
                            BitOp::Or => p | q,
                            BitOp::Xor => p ^ q,
                            // A shift by the width or more (or by a negative
                            // amount, read as unsigned) leaves 0, or the sign
                            // for a right shift of a negative value.
                            BitOp::ShiftLeft => u32::try_from(q).ok().and_then(|q| p.checked_shl(q)).unwrap_or(0),
                            BitOp::ShiftRight => u32::try_from(q)
                                .ok()
                                .and_then(|q| p.checked_shr(q))
                                .unwrap_or_else(|| p.checked_shr(p.count_zeros() + p.count_ones() - 1).unwrap_or(p)),
                        })?;
                        Tensor::new(shape, Data::$v(v))?
                    })*
                    _ => return Err(format!("{op:?} is not defined for {} and {}", a.dtype(), b.dtype())),
                }
            };
        }
        Ok(vec![go!(I8, I16, I32, I64, U8, U16, U32, U64)])
    }
}

/// Unary ops, with their parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
#[allow(missing_docs)]
pub enum UnOp {
    Abs,
    Neg,
    Sign,
    Relu,
    Floor,
    Ceil,
    Round,
    Sqrt,
    Reciprocal,
    Exp,
    Log,
    Tanh,
    Sigmoid,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Asinh,
    Acosh,
    Atanh,
    Erf,
    Softplus,
    Softsign,
    Mish,
    HardSwish,
    LeakyRelu(f64),
    Elu(f64),
    Celu(f64),
    Selu { alpha: f64, gamma: f64 },
    HardSigmoid { alpha: f64, beta: f64 },
    ThresholdedRelu(f64),
    Gelu { tanh: bool },
    Shrink { bias: f64, lambd: f64 },
    Swish(f64),
}

/// erf(x), accurate to about 1e-7 relative: a Taylor series near 0 and a
/// Chebyshev fit of erfc (Numerical Recipes' `erfcc`) elsewhere.
pub fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x.abs() < 0.5 {
        let (mut term, mut sum) = (x, x);
        let x2 = x * x;
        for n in 1..30 {
            term *= -x2 / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        return sum * std::f64::consts::FRAC_2_SQRT_PI;
    }
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let erfc = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { 1.0 - erfc } else { erfc - 1.0 }
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

fn softplus(x: f64) -> f64 {
    if x > 30.0 { x } else { x.exp().ln_1p() }
}

impl UnOp {
    /// The op on one value.
    pub fn f(self, x: f64) -> f64 {
        match self {
            UnOp::Abs => x.abs(),
            UnOp::Neg => -x,
            UnOp::Sign => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    x
                }
            }
            UnOp::Relu => {
                if x > 0.0 || x.is_nan() {
                    x
                } else {
                    0.0
                }
            }
            UnOp::Floor => x.floor(),
            UnOp::Ceil => x.ceil(),
            UnOp::Round => x.round_ties_even(),
            UnOp::Sqrt => x.sqrt(),
            UnOp::Reciprocal => 1.0 / x,
            UnOp::Exp => x.exp(),
            UnOp::Log => x.ln(),
            UnOp::Tanh => x.tanh(),
            UnOp::Sigmoid => sigmoid(x),
            UnOp::Sin => x.sin(),
            UnOp::Cos => x.cos(),
            UnOp::Tan => x.tan(),
            UnOp::Asin => x.asin(),
            UnOp::Acos => x.acos(),
            UnOp::Atan => x.atan(),
            UnOp::Sinh => x.sinh(),
            UnOp::Cosh => x.cosh(),
            UnOp::Asinh => x.asinh(),
            UnOp::Acosh => x.acosh(),
            UnOp::Atanh => x.atanh(),
            UnOp::Erf => erf(x),
            UnOp::Softplus => softplus(x),
            UnOp::Softsign => x / (1.0 + x.abs()),
            UnOp::Mish => x * softplus(x).tanh(),
            UnOp::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
            UnOp::LeakyRelu(a) => {
                if x >= 0.0 {
                    x
                } else {
                    a * x
                }
            }
            UnOp::Elu(a) => {
                if x >= 0.0 {
                    x
                } else {
                    a * (x.exp() - 1.0)
                }
            }
            UnOp::Celu(a) => x.max(0.0) + (a * ((x / a).exp() - 1.0)).min(0.0),
            UnOp::Selu { alpha, gamma } => {
                if x > 0.0 {
                    gamma * x
                } else {
                    gamma * (alpha * x.exp() - alpha)
                }
            }
            UnOp::HardSigmoid { alpha, beta } => (alpha * x + beta).clamp(0.0, 1.0),
            UnOp::ThresholdedRelu(a) => {
                if x > a {
                    x
                } else {
                    0.0
                }
            }
            UnOp::Gelu { tanh: false } => 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2)),
            UnOp::Gelu { tanh: true } => {
                let c = (2.0 / std::f64::consts::PI).sqrt();
                0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
            }
            UnOp::Swish(a) => x * sigmoid(a * x),
            UnOp::Shrink { bias, lambd } => {
                if x < -lambd {
                    x + bias
                } else if x > lambd {
                    x - bias
                } else {
                    0.0
                }
            }
        }
    }

    /// Ops defined on integers too (computed exactly, wrapping).
    fn int_op(self, x: i64) -> Option<i64> {
        Some(match self {
            UnOp::Abs => x.wrapping_abs(),
            UnOp::Neg => x.wrapping_neg(),
            UnOp::Sign => x.signum(),
            UnOp::Relu => x.max(0),
            _ => return None,
        })
    }
}

/// Applies a unary op to a tensor.
pub fn unary(op: UnOp, x: &Tensor) -> Result<Tensor, String> {
    let shape = x.shape.clone();
    match &x.data {
        Data::F32(v) => {
            let out: Vec<f32> = match op {
                UnOp::Relu => v
                    .iter()
                    .map(|&a| if a > 0.0 || a.is_nan() { a } else { 0.0 })
                    .collect(),
                UnOp::Neg => v.iter().map(|&a| -a).collect(),
                UnOp::Abs => v.iter().map(|&a| a.abs()).collect(),
                _ => v.iter().map(|&a| op.f(a as f64) as f32).collect(),
            };
            Tensor::new(shape, Data::F32(out))
        }
        Data::F64(v) => Tensor::new(shape, Data::F64(v.iter().map(|&a| op.f(a)).collect())),
        Data::F16(_) | Data::BF16(_) => {
            let w = widen(x);
            narrow(unary(op, &w)?, x.dtype())
        }
        Data::Bool(_) => Err(format!("{op:?} is not defined for bool")),
        d => {
            let ints = d.to_i64_vec().ok_or("not an integer tensor")?;
            if op.int_op(0).is_none() {
                return Err(format!("{op:?} is not defined for {}", d.dtype()));
            }
            let out: Vec<i64> = ints.iter().map(|&a| op.int_op(a).unwrap_or(0)).collect();
            Tensor::new(shape, Data::I64(out))?.cast(d.dtype())
        }
    }
}

/// A unary kernel.
#[derive(Debug)]
pub struct Unary(pub UnOp);

impl Kernel for Unary {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        Ok(vec![unary(self.0, arg(inputs, 0)?)?])
    }
}

/// `PRelu`: `x < 0 ? slope * x : x`, slope broadcast to x.
#[derive(Debug)]
pub struct PRelu;

impl Kernel for PRelu {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let (x, s) = (arg(inputs, 0)?, arg(inputs, 1)?);
        let orig = x.dtype();
        let (xw, sw) = (widen(x), widen(s));
        let out = crate::by_float!(orig, T => {
            let a = <T as super::Float>::read(&xw)?;
            let b = <T as super::Float>::read(&sw)?;
            let (v, shape) = broadcast2(&a, &x.shape, &b, &s.shape, |p, q| if p < 0.0 { p * q } else { p })?;
            super::float_out(orig, shape, v)?
        });
        Ok(vec![out])
    }
}

/// `Not` on bool.
#[derive(Debug)]
pub struct Not;

impl Kernel for Not {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        match &x.data {
            Data::Bool(v) => Ok(vec![Tensor::new(
                x.shape.clone(),
                Data::Bool(v.iter().map(|b| !b).collect()),
            )?]),
            _ => Err(format!("Not needs bool, found {}", x.dtype())),
        }
    }
}

/// `IsNaN` / `IsInf` (with its detect flags).
#[derive(Debug)]
pub struct FloatClass {
    /// true: IsNaN; false: IsInf.
    pub nan: bool,
    /// IsInf: report +inf.
    pub positive: bool,
    /// IsInf: report -inf.
    pub negative: bool,
}

impl Kernel for FloatClass {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        if !x.dtype().is_floating_point() {
            return Err(format!("needs a float tensor, found {}", x.dtype()));
        }
        let v = x.data.to_f64_vec();
        let out = v
            .iter()
            .map(|&a| {
                if self.nan {
                    a.is_nan()
                } else {
                    (a == f64::INFINITY && self.positive)
                        || (a == f64::NEG_INFINITY && self.negative)
                }
            })
            .collect();
        Ok(vec![Tensor::new(x.shape.clone(), Data::Bool(out))?])
    }
}

/// `Clip` with bounds from attributes (`min`/`max` fields) or inputs 1 and 2.
#[derive(Debug)]
pub struct Clip {
    /// Lower bound from an attribute (opset < 11).
    pub min: Option<f64>,
    /// Upper bound from an attribute (opset < 11).
    pub max: Option<f64>,
}

impl Kernel for Clip {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        let mut out = x.clone();
        let bound = |i: usize, attr: Option<f64>| -> Result<Option<Tensor>, String> {
            if let Some(t) = opt(inputs, i) {
                if t.numel() != 1 {
                    return Err(format!("bound input {i} has {} elements, not 1", t.numel()));
                }
                return Ok(Some(t.clone().reshaped(vec![])?));
            }
            Ok(match attr {
                Some(v) => Some(Tensor::scalar(Data::F64(vec![v])).cast(x.dtype())?),
                None => None,
            })
        };
        if let Some(lo) = bound(1, self.min)? {
            out = binary(BinOp::Max, &out, &lo)?;
        }
        if let Some(hi) = bound(2, self.max)? {
            out = binary(BinOp::Min, &out, &hi)?;
        }
        Ok(vec![out])
    }
}

/// `Where(cond, x, y)` with three-way broadcasting.
#[derive(Debug)]
pub struct Where;

impl Kernel for Where {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let (c, x, y) = (arg(inputs, 0)?, arg(inputs, 1)?, arg(inputs, 2)?);
        let Data::Bool(cv) = &c.data else {
            return Err(format!("condition must be bool, found {}", c.dtype()));
        };
        if x.dtype() != y.dtype() {
            return Err(format!(
                "x and y have different dtypes {} and {}",
                x.dtype(),
                y.dtype()
            ));
        }
        let shape = broadcast_shape(&broadcast_shape(&c.shape, &x.shape)?, &y.shape)?;
        let oc = broadcast_offsets(&c.shape, &shape)?;
        let ox = broadcast_offsets(&x.shape, &shape)?;
        let oy = broadcast_offsets(&y.shape, &shape)?;
        macro_rules! go {
            ($($v:ident),*) => {
                match (&x.data, &y.data) {
                    $((Data::$v(a), Data::$v(b)) => Data::$v(
                        (0..oc.len()).map(|i| if cv[oc[i]] { a[ox[i]] } else { b[oy[i]] }).collect(),
                    ),)*
                    _ => return Err("x and y differ in dtype".into()),
                }
            };
        }
        let data = go!(
            F32, F64, F16, BF16, I8, I16, I32, I64, U8, U16, U32, U64, Bool
        );
        Ok(vec![Tensor::new(shape, data)?])
    }
}

/// `Cast` to a fixed dtype (or `CastLike`: to input 1's dtype).
#[derive(Debug)]
pub struct Cast(pub Option<DType>);

impl Kernel for Cast {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        let to = match self.0 {
            Some(d) => d,
            None => arg(inputs, 1)?.dtype(),
        };
        Ok(vec![x.cast(to)?])
    }
}

/// `BitwiseNot` on integers.
#[derive(Debug)]
pub struct BitNot;

impl Kernel for BitNot {
    fn run(&self, inputs: &[Option<&Tensor>]) -> KResult {
        let x = arg(inputs, 0)?;
        macro_rules! go {
            ($($v:ident),*) => {
                match &x.data {
                    $(Data::$v(a) => Data::$v(a.iter().map(|e| !e).collect()),)*
                    _ => return Err(format!("BitwiseNot is not defined for {}", x.dtype())),
                }
            };
        }
        let data = go!(I8, I16, I32, I64, U8, U16, U32, U64);
        Ok(vec![Tensor::new(x.shape.clone(), data)?])
    }
}

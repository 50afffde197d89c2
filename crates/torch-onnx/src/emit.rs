//! The layer vocabulary the families write their forward pass in: one call
//! per torch module or functional op (`conv2d`, `batch_norm`, `linear`,
//! `relu`, ...), each turned into the ONNX nodes torch's exporter writes for
//! it at the chosen opset.
//!
//! An [`Emit`] runs in one of two modes. A *dry* run adds nothing: it
//! records the state_dict keys and shapes the model declares (what
//! `model.state_dict()` would hold), so a family's forward is also its key
//! list, compared with the file before anything is built. A *real* run adds
//! nodes and initializers (named by the state_dict keys) to a graph builder.
//!
//! Node names follow torch's scopes: the module `layer1.0.conv1` gives
//! `/layer1/layer1.0/conv1/Conv` (each level's qualified name from its last
//! non-numeric atom on); node outputs are `<node name>_output_0`.

use std::collections::HashMap;

use netport_onnx::build::{Attr, GraphBuilder, tensor_proto};
use netport_tensor::{ByteOrder, DType, TensorView};

use crate::error::ExportError;
use crate::source::{StateDict, Weights};

/// What a model declares: its state_dict keys and shapes, in order.
pub type Declared = Vec<(String, Vec<u64>)>;

/// Writes a family's forward pass (see the module docs).
pub struct Emit<'a> {
    sd: &'a StateDict,
    graph: Option<&'a mut GraphBuilder>,
    /// The opset the graph is written for.
    pub opset: i64,
    declared: Declared,
    names: HashMap<String, usize>,
    params: u64,
    values: usize,
}

/// A `Conv2d` module's constructor arguments.
#[derive(Debug, Clone, Copy)]
pub struct Conv {
    /// in_channels.
    pub cin: u64,
    /// out_channels.
    pub cout: u64,
    /// kernel_size (square).
    pub k: u64,
    /// stride.
    pub stride: u64,
    /// padding (symmetric).
    pub pad: u64,
    /// groups.
    pub groups: u64,
    /// dilation.
    pub dilation: u64,
    /// bias.
    pub bias: bool,
    /// A non-square kernel and padding: (kh, kw, ph, pw); `k`/`pad` unused.
    pub rect: Option<(u64, u64, u64, u64)>,
}

impl Conv {
    /// `Conv2d(cin, cout, k, stride, pad, bias=False)`.
    pub fn new(cin: u64, cout: u64, k: u64, stride: u64, pad: u64) -> Self {
        Conv {
            cin,
            cout,
            k,
            stride,
            pad,
            groups: 1,
            dilation: 1,
            bias: false,
            rect: None,
        }
    }

    /// `Conv2d(cin, cout, (kh, kw), padding=(ph, pw))`, bias=False.
    pub fn rect(cin: u64, cout: u64, kh: u64, kw: u64, ph: u64, pw: u64) -> Self {
        Conv {
            rect: Some((kh, kw, ph, pw)),
            ..Conv::new(cin, cout, kh.max(kw), 1, 0)
        }
    }

    /// With `groups`.
    pub fn groups(mut self, groups: u64) -> Self {
        self.groups = groups;
        self
    }

    /// With a bias.
    pub fn bias(mut self) -> Self {
        self.bias = true;
        self
    }

    /// With `dilation`.
    pub fn dilation(mut self, dilation: u64) -> Self {
        self.dilation = dilation;
        self
    }
}

fn ints(v: &[u64]) -> Attr {
    Attr::Ints(v.iter().map(|&x| x as i64).collect())
}

/// The scope components torch's exporter gives the module at `path`.
fn scope_of(path: &str) -> Vec<String> {
    if path.is_empty() {
        return Vec::new();
    }
    let atoms: Vec<&str> = path.split('.').collect();
    (1..=atoms.len())
        .map(|end| {
            let prefix = &atoms[..end];
            let start = prefix
                .iter()
                .rposition(|a| !a.chars().all(|c| c.is_ascii_digit()))
                .unwrap_or(0);
            prefix[start..].join(".")
        })
        .collect()
}

/// The output size of a convolution or pooling window over `n`.
pub fn conv_out(n: u64, k: u64, stride: u64, pad: u64, dilation: u64) -> u64 {
    (n + 2 * pad).saturating_sub(dilation * (k - 1) + 1) / stride.max(1) + 1
}

/// The output size of a pooling window over `n`, in torch's ceil mode when
/// `ceil` (the last window must start inside the input or its left pad).
pub fn pool_out(n: u64, k: u64, stride: u64, pad: u64, ceil: bool) -> u64 {
    let s = stride.max(1);
    let span = (n + 2 * pad).saturating_sub(k);
    if !ceil {
        return span / s + 1;
    }
    let mut out = span.div_ceil(s) + 1;
    if (out - 1) * s >= n + pad {
        out -= 1;
    }
    out
}

/// `parent.child` (`child` alone at the root).
pub fn join(path: &str, child: &str) -> String {
    if path.is_empty() {
        child.to_string()
    } else {
        format!("{path}.{child}")
    }
}

impl<'a> Emit<'a> {
    /// A dry run: records the declared keys, adds nothing.
    pub fn dry(sd: &'a StateDict, opset: i64) -> Self {
        Emit {
            sd,
            graph: None,
            opset,
            declared: Vec::new(),
            names: HashMap::new(),
            params: 0,
            values: 0,
        }
    }

    /// A real run adding to `graph`.
    pub fn real(sd: &'a StateDict, graph: &'a mut GraphBuilder, opset: i64) -> Self {
        Emit {
            graph: Some(graph),
            ..Emit::dry(sd, opset)
        }
    }

    /// The keys and shapes declared so far.
    pub fn declared(self) -> Declared {
        self.declared
    }

    /// The number of learnable parameter elements declared so far.
    pub fn param_count(&self) -> u64 {
        self.params
    }

    /// The state_dict being exported.
    pub fn state_dict(&self) -> &StateDict {
        self.sd
    }

    fn declare(&mut self, name: &str, shape: &[u64]) {
        self.declared.push((name.to_string(), shape.to_vec()));
    }

    fn add_initializer(&mut self, name: &str, shape: &[u64]) -> Result<String, ExportError> {
        let Some(g) = self.graph.as_deref_mut() else {
            return Ok(name.to_string());
        };
        let dims = shape
            .iter()
            .map(|&d| i64::try_from(d))
            .collect::<Result<Vec<i64>, _>>()
            .map_err(|_| ExportError::BadTensor {
                name: name.to_string(),
                reason: format!("shape {shape:?} has a dim above i64"),
            })?;
        match self.sd.f32_weights(name)? {
            Weights::Stored(source) => {
                g.initializer_source(name, DType::Float32, &dims, Box::new(source))?;
                Ok(name.to_string())
            }
            Weights::Copied(bytes) => Self::initializer_of(g, name, &bytes, DType::Float32, shape),
        }
    }

    fn initializer_of(
        g: &mut GraphBuilder,
        name: &str,
        bytes: &[u8],
        dtype: DType,
        shape: &[u64],
    ) -> Result<String, ExportError> {
        let view = TensorView::contiguous(bytes, dtype, shape, ByteOrder::Little).map_err(|e| {
            ExportError::BadTensor {
                name: name.to_string(),
                reason: e.to_string(),
            }
        })?;
        g.initializer(name, &view)?;
        Ok(name.to_string())
    }

    /// A learnable parameter `name` of `shape`: declared, and in a real run
    /// an initializer of that name.
    pub fn param(&mut self, name: &str, shape: &[u64]) -> Result<String, ExportError> {
        self.declare(name, shape);
        self.params += shape.iter().product::<u64>();
        self.add_initializer(name, shape)
    }

    /// A float buffer the graph reads (BatchNorm running statistics).
    pub fn buffer(&mut self, name: &str, shape: &[u64]) -> Result<String, ExportError> {
        self.declare(name, shape);
        self.add_initializer(name, shape)
    }

    /// An integer buffer of indices into a dim of `bound` entries
    /// (`relative_position_index`): declared, and in a real run an int64
    /// initializer of that name whose values are checked to lie in
    /// `-bound..bound` (what both torch's indexing and ONNX `Gather` accept).
    pub fn index_buffer(
        &mut self,
        name: &str,
        shape: &[u64],
        bound: u64,
    ) -> Result<String, ExportError> {
        self.declare(name, shape);
        let Some(g) = self.graph.as_deref_mut() else {
            return Ok(name.to_string());
        };
        let bytes = self.sd.i64_bytes(name)?;
        let bound = bound as i64;
        if let Some((i, v)) = bytes
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .enumerate()
            .find(|(_, v)| !(-bound..bound).contains(v))
        {
            return Err(ExportError::BadTensor {
                name: name.to_string(),
                reason: format!("element {i} is {v}, outside the {bound} entries it indexes"),
            });
        }
        Self::initializer_of(g, name, &bytes, DType::Int64, shape)
    }

    /// A parameter the eval-mode graph does not read (an auxiliary head):
    /// declared only, not counted.
    pub fn unused_param(&mut self, name: &str, shape: &[u64]) {
        self.declare(name, shape);
    }

    /// A buffer the graph does not read (`num_batches_tracked`): declared
    /// only.
    pub fn unused_buffer(&mut self, name: &str, shape: &[u64]) {
        self.declare(name, shape);
    }

    /// A node of `op` in the scope of module `at` with one output; returns
    /// the output's name.
    pub fn op(
        &mut self,
        at: &str,
        op: &str,
        inputs: &[&str],
        attrs: Vec<(&str, Attr)>,
    ) -> Result<String, ExportError> {
        Ok(self.op_n(at, op, inputs, attrs, 1)?.remove(0))
    }

    /// A node with `n` outputs.
    pub fn op_n(
        &mut self,
        at: &str,
        op: &str,
        inputs: &[&str],
        attrs: Vec<(&str, Attr)>,
        n: usize,
    ) -> Result<Vec<String>, ExportError> {
        let scope = scope_of(at);
        let base = if scope.is_empty() {
            format!("/{op}")
        } else {
            format!("/{}/{op}", scope.join("/"))
        };
        let count = self.names.entry(base.clone()).or_insert(0);
        let name = if *count == 0 {
            base.clone()
        } else {
            format!("{base}_{count}")
        };
        *count += 1;
        let outputs: Vec<String> = (0..n).map(|i| format!("{name}_output_{i}")).collect();
        self.values += n;
        let Some(g) = self.graph.as_deref_mut() else {
            return Ok(outputs);
        };
        let outs: Vec<&str> = outputs.iter().map(String::as_str).collect();
        let mut node = g.node(op, inputs, &outs).name(&name);
        for (k, v) in attrs {
            node = node.attr(k, v);
        }
        node.add()?;
        Ok(outputs)
    }

    /// A `Constant` int64 tensor (a shape, axes, split sizes).
    pub fn const_i64(&mut self, at: &str, values: &[i64]) -> Result<String, ExportError> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constant(at, &bytes, DType::Int64, &[values.len() as u64])
    }

    /// A `Constant` float32 tensor of `shape`.
    pub fn const_f32s(
        &mut self,
        at: &str,
        values: &[f32],
        shape: &[u64],
    ) -> Result<String, ExportError> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constant(at, &bytes, DType::Float32, shape)
    }

    /// A `Constant` float32 scalar (0-d).
    pub fn const_f32(&mut self, at: &str, value: f32) -> Result<String, ExportError> {
        self.constant(at, &value.to_le_bytes(), DType::Float32, &[])
    }

    fn constant(
        &mut self,
        at: &str,
        bytes: &[u8],
        dtype: DType,
        shape: &[u64],
    ) -> Result<String, ExportError> {
        let view = TensorView::contiguous(bytes, dtype, shape, ByteOrder::Little)
            .map_err(|e| ExportError::Internal(e.to_string()))?;
        let t = tensor_proto("", &view)?;
        self.op(at, "Constant", &[], vec![("value", Attr::Tensor(t))])
    }

    // ---- modules ----

    /// `nn.Conv2d` at `at` (keys `at.weight`, `at.bias`).
    pub fn conv2d(&mut self, at: &str, x: &str, c: Conv) -> Result<String, ExportError> {
        let (kh, kw, ph, pw) = c.rect.unwrap_or((c.k, c.k, c.pad, c.pad));
        let w = self.param(
            &join(at, "weight"),
            &[c.cout, c.cin / c.groups.max(1), kh, kw],
        )?;
        let b = if c.bias {
            Some(self.param(&join(at, "bias"), &[c.cout])?)
        } else {
            None
        };
        let mut inputs = vec![x, w.as_str()];
        if let Some(b) = &b {
            inputs.push(b);
        }
        self.op(
            at,
            "Conv",
            &inputs,
            vec![
                ("dilations", ints(&[c.dilation, c.dilation])),
                ("group", Attr::Int(c.groups as i64)),
                ("kernel_shape", ints(&[kh, kw])),
                ("pads", ints(&[ph, pw, ph, pw])),
                ("strides", ints(&[c.stride, c.stride])),
            ],
        )
    }

    /// `nn.BatchNorm2d(c, eps)` in eval mode (running statistics).
    pub fn batch_norm(
        &mut self,
        at: &str,
        x: &str,
        c: u64,
        eps: f32,
    ) -> Result<String, ExportError> {
        let w = self.param(&join(at, "weight"), &[c])?;
        let b = self.param(&join(at, "bias"), &[c])?;
        let m = self.buffer(&join(at, "running_mean"), &[c])?;
        let v = self.buffer(&join(at, "running_var"), &[c])?;
        self.unused_buffer(&join(at, "num_batches_tracked"), &[]);
        self.op(
            at,
            "BatchNormalization",
            &[x, &w, &b, &m, &v],
            vec![
                ("epsilon", Attr::Float(eps)),
                ("momentum", Attr::Float(0.9)),
            ],
        )
    }

    /// `nn.Linear(fin, fout)` on a [N, fin] input: `Gemm` with `transB`.
    pub fn linear(
        &mut self,
        at: &str,
        x: &str,
        fin: u64,
        fout: u64,
    ) -> Result<String, ExportError> {
        let w = self.param(&join(at, "weight"), &[fout, fin])?;
        let b = self.param(&join(at, "bias"), &[fout])?;
        self.op(
            at,
            "Gemm",
            &[x, &w, &b],
            vec![
                ("alpha", Attr::Float(1.0)),
                ("beta", Attr::Float(1.0)),
                ("transB", Attr::Int(1)),
            ],
        )
    }

    /// `nn.Linear(fin, fout)` on an input of any rank (features last):
    /// `MatMul` with the transposed weight, then `Add` of the bias (torch
    /// folds the transpose into a new initializer; ours keeps the
    /// state_dict's weight and transposes it in the graph).
    pub fn linear_nd(
        &mut self,
        at: &str,
        x: &str,
        fin: u64,
        fout: u64,
    ) -> Result<String, ExportError> {
        let y = self.linear_nd_no_bias(at, x, fin, fout)?;
        let b = self.param(&join(at, "bias"), &[fout])?;
        self.add(at, &y, &b)
    }

    /// `nn.Linear(fin, fout, bias=False)` on an input of any rank: `MatMul`
    /// with the transposed weight (what torch writes for a Linear without
    /// bias, on 2-d inputs too).
    pub fn linear_nd_no_bias(
        &mut self,
        at: &str,
        x: &str,
        fin: u64,
        fout: u64,
    ) -> Result<String, ExportError> {
        let w = self.param(&join(at, "weight"), &[fout, fin])?;
        let wt = self.transpose(at, &w, &[1, 0])?;
        self.op(at, "MatMul", &[x, &wt], vec![])
    }

    /// `nn.LayerNorm(c, eps)` over the last dim (keys `at.weight`,
    /// `at.bias`): `LayerNormalization` from opset 17, before it the
    /// decomposition torch's exporter writes (ReduceMean, Sub, Pow,
    /// ReduceMean, Add, Sqrt, Div, Mul, Add).
    pub fn layer_norm(
        &mut self,
        at: &str,
        x: &str,
        c: u64,
        eps: f32,
    ) -> Result<String, ExportError> {
        let w = self.param(&join(at, "weight"), &[c])?;
        let b = self.param(&join(at, "bias"), &[c])?;
        if self.opset >= 17 {
            return self.op(
                at,
                "LayerNormalization",
                &[x, &w, &b],
                vec![("axis", Attr::Int(-1)), ("epsilon", Attr::Float(eps))],
            );
        }
        let mean = self.reduce_mean(at, x, &[-1], true)?;
        let d = self.op(at, "Sub", &[x, &mean], vec![])?;
        let two = self.const_f32(at, 2.0)?;
        let sq = self.op(at, "Pow", &[&d, &two], vec![])?;
        let var = self.reduce_mean(at, &sq, &[-1], true)?;
        let e = self.const_f32(at, eps)?;
        let v = self.add(at, &var, &e)?;
        let sd = self.op(at, "Sqrt", &[&v], vec![])?;
        let n = self.op(at, "Div", &[&d, &sd], vec![])?;
        let y = self.mul(at, &n, &w)?;
        self.add(at, &y, &b)
    }

    /// `nn.GELU()` (exact, erf): `Gelu` from opset 20, before it
    /// `x * 0.5 * (1 + erf(x / sqrt(2)))` as torch writes it.
    pub fn gelu(&mut self, at: &str, x: &str) -> Result<String, ExportError> {
        if self.opset >= 20 {
            return self.op(at, "Gelu", &[x], vec![]);
        }
        let r2 = self.const_f32(at, std::f32::consts::SQRT_2)?;
        let d = self.op(at, "Div", &[x, &r2], vec![])?;
        let erf = self.op(at, "Erf", &[&d], vec![])?;
        let one = self.const_f32(at, 1.0)?;
        let p = self.add(at, &erf, &one)?;
        let m = self.mul(at, x, &p)?;
        let half = self.const_f32(at, 0.5)?;
        self.mul(at, &m, &half)
    }

    /// `x.index_select(axis, [index])` without the axis (`x[:, 0]`):
    /// `Gather` with a scalar index.
    pub fn gather(
        &mut self,
        at: &str,
        x: &str,
        index: i64,
        axis: i64,
    ) -> Result<String, ExportError> {
        let i = self.constant(at, &index.to_le_bytes(), DType::Int64, &[])?;
        self.op(at, "Gather", &[x, &i], vec![("axis", Attr::Int(axis))])
    }

    /// `table[index]` for an integer tensor `index` (rows of `table`):
    /// `Gather` on axis 0.
    pub fn gather_rows(
        &mut self,
        at: &str,
        table: &str,
        index: &str,
    ) -> Result<String, ExportError> {
        self.op(at, "Gather", &[table, index], vec![("axis", Attr::Int(0))])
    }

    /// `softmax(x, dim=-1)`.
    pub fn softmax_last(&mut self, at: &str, x: &str) -> Result<String, ExportError> {
        self.op(at, "Softmax", &[x], vec![("axis", Attr::Int(-1))])
    }

    /// `x @ y`.
    pub fn matmul(&mut self, at: &str, x: &str, y: &str) -> Result<String, ExportError> {
        self.op(at, "MatMul", &[x, y], vec![])
    }

    /// `nn.ReLU`.
    pub fn relu(&mut self, at: &str, x: &str) -> Result<String, ExportError> {
        self.op(at, "Relu", &[x], vec![])
    }

    /// `nn.MaxPool2d(k, stride, pad, ceil_mode)` on an input of spatial
    /// size `size` (H, W). Before opset 10 (no `ceil_mode`) a ceil-mode pool
    /// gets the extra end padding that makes the floor formula give the
    /// ceil-mode size, as torch's opset-9 exporter writes it.
    #[allow(clippy::too_many_arguments)]
    pub fn max_pool(
        &mut self,
        at: &str,
        x: &str,
        k: u64,
        stride: u64,
        pad: u64,
        ceil: bool,
        size: (u64, u64),
    ) -> Result<String, ExportError> {
        let mut attrs = Vec::new();
        let mut end = (pad, pad);
        if self.opset >= 10 {
            attrs.push(("ceil_mode", Attr::Int(ceil as i64)));
            attrs.push(("dilations", ints(&[1, 1])));
        } else if ceil {
            if size.0 == 0 || size.1 == 0 {
                return Err(ExportError::Internal(format!(
                    "'{at}': a ceil-mode MaxPool before opset 10 needs its input size"
                )));
            }
            let extra = |n: u64| {
                let want = pool_out(n, k, stride, pad, true);
                ((want - 1) * stride + k).saturating_sub(n + 2 * pad)
            };
            end = (pad + extra(size.0), pad + extra(size.1));
        }
        attrs.push(("kernel_shape", ints(&[k, k])));
        attrs.push(("pads", ints(&[pad, pad, end.0, end.1])));
        attrs.push(("strides", ints(&[stride, stride])));
        self.op(at, "MaxPool", &[x], attrs)
    }

    /// `nn.AvgPool2d(k, stride, pad)` (ceil_mode False,
    /// count_include_pad True: torch's defaults).
    pub fn avg_pool(
        &mut self,
        at: &str,
        x: &str,
        k: u64,
        stride: u64,
        pad: u64,
    ) -> Result<String, ExportError> {
        let mut attrs = Vec::new();
        if self.opset >= 10 {
            attrs.push(("ceil_mode", Attr::Int(0)));
        }
        if pad > 0 {
            attrs.push(("count_include_pad", Attr::Int(1)));
        }
        attrs.push(("kernel_shape", ints(&[k, k])));
        attrs.push(("pads", ints(&[pad, pad, pad, pad])));
        attrs.push(("strides", ints(&[stride, stride])));
        self.op(at, "AveragePool", &[x], attrs)
    }

    /// `nn.AdaptiveAvgPool2d(out)` on an input of spatial size `size`:
    /// `GlobalAveragePool` for 1x1, an `AveragePool` whose kernel and stride
    /// are `size / out` when that divides evenly (what torch exports); other
    /// sizes are refused, as torch's exporter refuses them.
    pub fn adaptive_avg_pool(
        &mut self,
        at: &str,
        x: &str,
        size: (u64, u64),
        out: (u64, u64),
    ) -> Result<String, ExportError> {
        if out == (1, 1) {
            return self.global_avg_pool(at, x);
        }
        if out.0 == 0
            || out.1 == 0
            || !size.0.is_multiple_of(out.0)
            || !size.1.is_multiple_of(out.1)
            || size.0 == 0
            || size.1 == 0
        {
            return Err(ExportError::Option(format!(
                "AdaptiveAvgPool2d{out:?} at '{at}' gets a {}x{} input, not a multiple of its output; choose an --input-size that makes it one",
                size.0, size.1
            )));
        }
        let k = [size.0 / out.0, size.1 / out.1];
        self.op(
            at,
            "AveragePool",
            &[x],
            vec![("kernel_shape", ints(&k)), ("strides", ints(&k))],
        )
    }

    /// `torch.cat(xs, axis)`.
    pub fn concat(&mut self, at: &str, xs: &[&str], axis: i64) -> Result<String, ExportError> {
        self.op(at, "Concat", xs, vec![("axis", Attr::Int(axis))])
    }

    /// `clamp(x, min, max)` (`nn.ReLU6`, `nn.Hardtanh`): `Clip` with
    /// attributes before opset 11, with constant inputs from 11.
    pub fn clip(&mut self, at: &str, x: &str, min: f32, max: f32) -> Result<String, ExportError> {
        if self.opset < 11 {
            return self.op(
                at,
                "Clip",
                &[x],
                vec![("max", Attr::Float(max)), ("min", Attr::Float(min))],
            );
        }
        let lo = self.const_f32(at, min)?;
        let hi = self.const_f32(at, max)?;
        self.op(at, "Clip", &[x, &lo, &hi], vec![])
    }

    /// `x.mean(axes)` (`keepdim` as given): `ReduceMean` with an `axes`
    /// attribute before opset 18, an axes input from 18.
    pub fn reduce_mean(
        &mut self,
        at: &str,
        x: &str,
        axes: &[i64],
        keepdims: bool,
    ) -> Result<String, ExportError> {
        self.reduce(at, "ReduceMean", x, axes, keepdims)
    }

    /// `x.norm(p=2, dim=axes)`: `ReduceL2`, axes as for [`Emit::reduce_mean`].
    pub fn reduce_l2(
        &mut self,
        at: &str,
        x: &str,
        axes: &[i64],
        keepdims: bool,
    ) -> Result<String, ExportError> {
        self.reduce(at, "ReduceL2", x, axes, keepdims)
    }

    /// A `Reduce*` op: an `axes` attribute before opset 18, an input from 18.
    fn reduce(
        &mut self,
        at: &str,
        op: &str,
        x: &str,
        axes: &[i64],
        keepdims: bool,
    ) -> Result<String, ExportError> {
        let keep = ("keepdims", Attr::Int(keepdims as i64));
        if self.opset < 18 {
            return self.op(
                at,
                op,
                &[x],
                vec![("axes", Attr::Ints(axes.to_vec())), keep],
            );
        }
        let a = self.const_i64(at, axes)?;
        self.op(at, op, &[x, &a], vec![keep])
    }

    /// `F.normalize(x, p=2, dim=-1)`: `x / max(||x||, 1e-12)` (ReduceL2,
    /// Clip, Div).
    pub fn normalize_last(&mut self, at: &str, x: &str) -> Result<String, ExportError> {
        let n = self.reduce_l2(at, x, &[-1], true)?;
        let n = self.clip(at, &n, 1e-12, f32::INFINITY)?;
        self.op(at, "Div", &[x, &n], vec![])
    }

    /// `x[starts:ends]` along `axes` (step 1): `Slice` with attributes
    /// before opset 10, constant inputs from 10.
    pub fn slice(
        &mut self,
        at: &str,
        x: &str,
        starts: &[i64],
        ends: &[i64],
        axes: &[i64],
    ) -> Result<String, ExportError> {
        if self.opset < 10 {
            return self.op(
                at,
                "Slice",
                &[x],
                vec![
                    ("axes", Attr::Ints(axes.to_vec())),
                    ("ends", Attr::Ints(ends.to_vec())),
                    ("starts", Attr::Ints(starts.to_vec())),
                ],
            );
        }
        let s = self.const_i64(at, starts)?;
        let e = self.const_i64(at, ends)?;
        let a = self.const_i64(at, axes)?;
        self.op(at, "Slice", &[x, &s, &e, &a], vec![])
    }

    /// `torch.roll(x, shift, axis)` over a dim of `len`: two `Slice`s and a
    /// `Concat`, as torch writes it (nothing when the shift is a multiple of
    /// the length).
    pub fn roll(
        &mut self,
        at: &str,
        x: &str,
        shift: i64,
        axis: i64,
        len: u64,
    ) -> Result<String, ExportError> {
        let len = len as i64;
        if len == 0 || shift.rem_euclid(len) == 0 {
            return Ok(x.to_string());
        }
        // out[i] = x[(i - shift) mod len]: the last `k` elements first.
        let k = shift.rem_euclid(len);
        let tail = self.slice(at, x, &[len - k], &[len], &[axis])?;
        let head = self.slice(at, x, &[0], &[len - k], &[axis])?;
        self.concat(at, &[&tail, &head], axis)
    }

    /// `F.pad(x, ...)` with zeros: `pads` in ONNX order (every axis's
    /// begin, then every axis's end); an attribute before opset 11, an
    /// input from 11.
    pub fn pad_zeros(&mut self, at: &str, x: &str, pads: &[i64]) -> Result<String, ExportError> {
        if self.opset < 11 {
            return self.op(
                at,
                "Pad",
                &[x],
                vec![
                    ("mode", Attr::String("constant".into())),
                    ("pads", Attr::Ints(pads.to_vec())),
                    ("value", Attr::Float(0.0)),
                ],
            );
        }
        let p = self.const_i64(at, pads)?;
        self.op(
            at,
            "Pad",
            &[x, &p],
            vec![("mode", Attr::String("constant".into()))],
        )
    }

    /// `torch.split(x, sizes, axis)`: `Split` with a `split` attribute
    /// before opset 13, a sizes input from 13.
    pub fn split(
        &mut self,
        at: &str,
        x: &str,
        sizes: &[i64],
        axis: i64,
    ) -> Result<Vec<String>, ExportError> {
        let ax = ("axis", Attr::Int(axis));
        if self.opset < 13 {
            let attrs = vec![ax, ("split", Attr::Ints(sizes.to_vec()))];
            return self.op_n(at, "Split", &[x], attrs, sizes.len());
        }
        let s = self.const_i64(at, sizes)?;
        self.op_n(at, "Split", &[x, &s], vec![ax], sizes.len())
    }

    /// `x.reshape(shape)` (a 0 copies the input's dim there, -1 is
    /// inferred).
    pub fn reshape(&mut self, at: &str, x: &str, shape: &[i64]) -> Result<String, ExportError> {
        let s = self.const_i64(at, shape)?;
        self.op(at, "Reshape", &[x, &s], vec![])
    }

    /// `x.permute(perm)`.
    pub fn transpose(&mut self, at: &str, x: &str, perm: &[i64]) -> Result<String, ExportError> {
        self.op(
            at,
            "Transpose",
            &[x],
            vec![("perm", Attr::Ints(perm.to_vec()))],
        )
    }

    /// `nn.Sigmoid`.
    pub fn sigmoid(&mut self, at: &str, x: &str) -> Result<String, ExportError> {
        self.op(at, "Sigmoid", &[x], vec![])
    }

    /// `nn.SiLU`: `x * sigmoid(x)`, as torch exports it.
    pub fn silu(&mut self, at: &str, x: &str) -> Result<String, ExportError> {
        let s = self.sigmoid(at, x)?;
        self.mul(at, x, &s)
    }

    /// `nn.Hardsigmoid`: `HardSigmoid(alpha=1/6, beta=0.5)`.
    pub fn hard_sigmoid(&mut self, at: &str, x: &str) -> Result<String, ExportError> {
        self.op(
            at,
            "HardSigmoid",
            &[x],
            vec![
                ("alpha", Attr::Float(1.0 / 6.0)),
                ("beta", Attr::Float(0.5)),
            ],
        )
    }

    /// `nn.Hardswish`: `HardSwish` from opset 14, else `x *
    /// HardSigmoid(x)`.
    pub fn hard_swish(&mut self, at: &str, x: &str) -> Result<String, ExportError> {
        if self.opset >= 14 {
            return self.op(at, "HardSwish", &[x], vec![]);
        }
        let s = self.hard_sigmoid(at, x)?;
        self.mul(at, x, &s)
    }

    /// `nn.AdaptiveAvgPool2d(1)`.
    pub fn global_avg_pool(&mut self, at: &str, x: &str) -> Result<String, ExportError> {
        self.op(at, "GlobalAveragePool", &[x], vec![])
    }

    /// `torch.flatten(x, 1)`.
    pub fn flatten(&mut self, at: &str, x: &str) -> Result<String, ExportError> {
        self.op(at, "Flatten", &[x], vec![("axis", Attr::Int(1))])
    }

    /// `x + y`.
    pub fn add(&mut self, at: &str, x: &str, y: &str) -> Result<String, ExportError> {
        self.op(at, "Add", &[x, y], vec![])
    }

    /// `x * y`.
    pub fn mul(&mut self, at: &str, x: &str, y: &str) -> Result<String, ExportError> {
        self.op(at, "Mul", &[x, y], vec![])
    }
}

#[cfg(test)]
mod tests {
    use super::scope_of;

    #[test]
    fn scopes_follow_torch_exporter_names() {
        assert_eq!(scope_of("layer1.0.conv1"), ["layer1", "layer1.0", "conv1"]);
        assert_eq!(
            scope_of("features.0.0"),
            ["features", "features.0", "features.0.0"]
        );
        assert_eq!(
            scope_of("features.denseblock1.denselayer1.norm1"),
            ["features", "denseblock1", "denselayer1", "norm1"]
        );
        assert!(scope_of("").is_empty());
    }
}

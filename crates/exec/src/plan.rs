//! The executable form both front ends build: constants, steps (a kernel
//! with the value slots it reads and writes) in topological order, the
//! declared inputs and the outputs. Values are freed after their last use.
//!
//! When a plan is finished, a `Relu` that is the only reader of a Conv's
//! output is fused into that Conv ([`Kernel::fuse_relu`]): the Conv applies
//! it in its epilogue, while the values are still in cache, and one pass and
//! one tensor less are made per run. The numbers are the same as with the
//! separate step. Then each kernel may precompute what depends only on its
//! constant inputs ([`Kernel::prepare`]: a Conv's Winograd-transformed
//! weights), once per load instead of once per run.

use crate::error::ExecError;
use crate::kernels::Kernel;
use crate::tensor::Tensor;
use netport_tensor::DType;
use std::collections::HashMap;

/// One dimension of a declared input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputDim {
    /// A fixed size.
    Fixed(usize),
    /// A named size the caller chooses (`batch`, `N`, ...).
    Symbolic(String),
    /// No size given.
    Unknown,
}

/// A graph input the caller must provide.
#[derive(Debug, Clone, PartialEq)]
pub struct InputSpec {
    /// The name.
    pub name: String,
    /// The declared element type, if any.
    pub dtype: Option<DType>,
    /// The declared shape, if any.
    pub shape: Option<Vec<InputDim>>,
}

/// One node of the plan.
#[derive(Debug)]
pub struct Step {
    /// The node's name (or its first output).
    pub name: String,
    /// The op type, as the format spells it.
    pub op: String,
    /// The kernel.
    pub kernel: Box<dyn Kernel>,
    /// Slots read (`None` for an omitted optional input).
    pub inputs: Vec<Option<usize>>,
    /// Slots written (`None` for an output nobody asked for).
    pub outputs: Vec<Option<usize>>,
    /// Slots whose last use is this step.
    pub(crate) free: Vec<usize>,
}

/// An executable graph.
#[derive(Debug, Default)]
pub struct Plan {
    /// Value names, one per slot.
    pub(crate) names: Vec<String>,
    /// Constant slots (initializers, Constant nodes, Caffe2 init net blobs).
    pub(crate) consts: HashMap<usize, Tensor>,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Inputs the caller provides, with their slots.
    pub(crate) inputs: Vec<(InputSpec, usize)>,
    /// Outputs, by name, with their slots.
    pub(crate) outputs: Vec<(String, usize)>,
    /// Intra-op threads (0: the caller's setting, as in a control-flow
    /// body; see [`Plan::set_threads`]).
    pub(crate) threads: usize,
}

impl Plan {
    /// The slot of a name, creating it.
    pub(crate) fn slot(&mut self, index: &mut HashMap<String, usize>, name: &str) -> usize {
        if let Some(&s) = index.get(name) {
            return s;
        }
        let s = self.names.len();
        self.names.push(name.to_string());
        index.insert(name.to_string(), s);
        s
    }

    /// The inputs the caller provides.
    pub fn inputs(&self) -> impl Iterator<Item = &InputSpec> {
        self.inputs.iter().map(|(s, _)| s)
    }

    /// The output names, in order.
    pub fn output_names(&self) -> impl Iterator<Item = &str> {
        self.outputs.iter().map(|(n, _)| n.as_str())
    }

    /// The op types used, each once, in first-use order.
    pub fn op_types(&self) -> Vec<&str> {
        let mut seen: Vec<&str> = Vec::new();
        for s in &self.steps {
            if !seen.contains(&s.op.as_str()) {
                seen.push(&s.op);
            }
        }
        seen
    }

    /// Sets how many threads each op may use (matrix products are cut into
    /// blocks, one per thread); 1 runs every op on the calling thread, 0
    /// (the default) keeps the caller's setting ([`crate::gemm::with_threads`],
    /// one thread unless set). Results do not depend on it.
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads;
    }

    /// Fuses each `Relu` whose input is written by a step that can take it
    /// ([`Kernel::fuse_relu`]) and read by nothing else: the producer then
    /// writes the Relu's output slot and the Relu step is removed.
    fn fuse_relus(&mut self) {
        let is_io = |plan: &Plan, v: usize| {
            plan.consts.contains_key(&v)
                || plan.outputs.iter().any(|(_, s)| *s == v)
                || plan.inputs.iter().any(|(_, s)| *s == v)
        };
        let mut r = 0;
        while r < self.steps.len() {
            if let Some(p) = self.relu_producer(r, &is_io)
                && self.steps[p].kernel.fuse_relu()
            {
                let relu = self.steps.remove(r);
                self.steps[p].outputs[0] = relu.outputs[0];
                continue;
            }
            r += 1;
        }
    }

    /// The step that step `r` can be fused into, when `r` is a `Relu` of
    /// one input `a` into `b`, `a` is the only output of an earlier step
    /// `p`, no step between them touches `a` or `b`, and no other step reads
    /// `a` (a Caffe2 in-place Relu, `a == b`, is read on by later steps as
    /// the Relu's output, which the fused producer then writes).
    fn relu_producer(&self, r: usize, is_io: &dyn Fn(&Plan, usize) -> bool) -> Option<usize> {
        let relu = &self.steps[r];
        if relu.op != "Relu" {
            return None;
        }
        let (a, b) = match (relu.inputs.as_slice(), relu.outputs.as_slice()) {
            ([Some(a)], [Some(b)]) => (*a, *b),
            _ => return None,
        };
        if is_io(self, a) {
            return None;
        }
        let p = (0..r)
            .rev()
            .find(|&i| self.steps[i].outputs.contains(&Some(a)))?;
        if self.steps[p].outputs.as_slice() != [Some(a)] {
            return None;
        }
        let touches =
            |s: &Step, v: usize| s.inputs.contains(&Some(v)) || s.outputs.contains(&Some(v));
        if self.steps[p + 1..r]
            .iter()
            .any(|s| touches(s, a) || touches(s, b))
        {
            return None;
        }
        if a != b
            && self
                .steps
                .iter()
                .enumerate()
                .any(|(i, s)| i != r && s.inputs.contains(&Some(a)))
        {
            return None;
        }
        Some(p)
    }

    /// Lets each kernel precompute from its constant inputs
    /// ([`Kernel::prepare`]): the constants that no step writes (a Caffe2
    /// op may write a blob of the init net, which then changes per run).
    fn prepare(&mut self) {
        let written: std::collections::HashSet<usize> = self
            .steps
            .iter()
            .flat_map(|s| s.outputs.iter().flatten().copied())
            .collect();
        let consts = &self.consts;
        for step in &mut self.steps {
            let args: Vec<Option<&Tensor>> = step
                .inputs
                .iter()
                .map(|s| {
                    s.filter(|s| !written.contains(s))
                        .and_then(|s| consts.get(&s))
                })
                .collect();
            if args.iter().any(Option::is_some) {
                step.kernel.prepare(&args);
            }
        }
    }

    /// Works out when each value can be freed (after its last reading
    /// step), never freeing outputs or constants.
    pub(crate) fn finish(&mut self) {
        self.fuse_relus();
        self.prepare();
        let mut last: HashMap<usize, usize> = HashMap::new();
        for (i, s) in self.steps.iter().enumerate() {
            for &v in s.inputs.iter().flatten() {
                last.insert(v, i);
            }
        }
        let keep: Vec<usize> = self.outputs.iter().map(|(_, s)| *s).collect();
        for s in &mut self.steps {
            s.free.clear();
        }
        for (v, i) in last {
            if !keep.contains(&v) && !self.consts.contains_key(&v) {
                self.steps[i].free.push(v);
            }
        }
    }

    /// Runs the plan on named inputs and returns the outputs in order.
    pub fn run(&self, inputs: &[(String, Tensor)]) -> Result<Vec<(String, Tensor)>, ExecError> {
        match self.threads {
            0 => self.run_here(inputs),
            n => crate::gemm::with_threads(n, || self.run_here(inputs)),
        }
    }

    fn run_here(&self, inputs: &[(String, Tensor)]) -> Result<Vec<(String, Tensor)>, ExecError> {
        let mut env: Vec<Option<Tensor>> = vec![None; self.names.len()];
        for (spec, slot) in &self.inputs {
            let t = inputs
                .iter()
                .find(|(n, _)| n == &spec.name)
                .map(|(_, t)| t)
                .ok_or_else(|| ExecError::Input {
                    name: spec.name.clone(),
                    reason: "is required by the model but was not given".into(),
                })?;
            check_input(spec, t)?;
            env[*slot] = Some(t.clone());
        }
        for (name, _) in inputs {
            if !self.inputs.iter().any(|(s, _)| &s.name == name) {
                return Err(ExecError::Input {
                    name: name.clone(),
                    reason: format!(
                        "is not an input of the model (its inputs: {})",
                        self.inputs
                            .iter()
                            .map(|(s, _)| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        }
        for step in &self.steps {
            let outs = {
                let args: Vec<Option<&Tensor>> = step
                    .inputs
                    .iter()
                    .map(|s| match s {
                        None => Ok(None),
                        Some(s) => env[*s]
                            .as_ref()
                            .or_else(|| self.consts.get(s))
                            .map(Some)
                            .ok_or_else(|| ExecError::Node {
                                node: step.name.clone(),
                                op: step.op.clone(),
                                reason: format!("input {:?} has no value", self.names[*s]),
                            }),
                    })
                    .collect::<Result<_, _>>()?;
                step.kernel.run(&args).map_err(|reason| ExecError::Node {
                    node: step.name.clone(),
                    op: step.op.clone(),
                    reason,
                })?
            };
            if outs.len() < step.outputs.iter().filter(|o| o.is_some()).count() {
                return Err(ExecError::Node {
                    node: step.name.clone(),
                    op: step.op.clone(),
                    reason: format!(
                        "made {} outputs, {} expected",
                        outs.len(),
                        step.outputs.len()
                    ),
                });
            }
            for (slot, t) in step.outputs.iter().zip(outs) {
                if let Some(s) = slot {
                    env[*s] = Some(t);
                }
            }
            for &f in &step.free {
                env[f] = None;
            }
        }
        self.outputs
            .iter()
            .map(|(name, s)| {
                env[*s]
                    .clone()
                    .or_else(|| self.consts.get(s).cloned())
                    .map(|t| (name.clone(), t))
                    .ok_or_else(|| ExecError::Model(format!("output {name:?} was never computed")))
            })
            .collect()
    }
}

fn check_input(spec: &InputSpec, t: &Tensor) -> Result<(), ExecError> {
    let err = |reason: String| ExecError::Input {
        name: spec.name.clone(),
        reason,
    };
    if let Some(d) = spec.dtype
        && d != t.dtype()
    {
        return Err(err(format!("is {} but the model declares {d}", t.dtype())));
    }
    if let Some(shape) = &spec.shape {
        if shape.len() != t.rank() {
            return Err(err(format!(
                "has shape {:?} but the model declares {} dims",
                t.shape,
                shape.len()
            )));
        }
        for (i, d) in shape.iter().enumerate() {
            if let InputDim::Fixed(n) = d
                && *n != t.shape[i]
            {
                return Err(err(format!(
                    "has shape {:?} but the model declares {n} at dim {i}",
                    t.shape
                )));
            }
        }
    }
    Ok(())
}

//! netport's executor: runs ONNX graphs and Caffe2 nets on one set of
//! kernels, for `netport run` and `netport verify`.
//!
//! - [`onnx`]: the ONNX front end (a `ModelProto` to a [`Plan`]);
//! - [`caffe2`](mod@caffe2): the Caffe2 front end (an init net + predict net
//!   pair to a [`Plan`]);
//! - [`kernels`]: the shared kernels (each op's parameters are read by the
//!   front end from its own format's definition);
//! - [`plan`]: the executable form, [`Plan::run`];
//! - [`tensor`]: owned tensors ([`Tensor`]) and `.npy` I/O;
//! - [`compare`]: output comparison within a tolerance;
//! - [`gemm`]: the matrix multiply (the `matrixmultiply` crate).
//!
//! A plan is built once, when the model is loaded: an op, attribute value or
//! dtype without a kernel is refused then, naming the node, op and opset,
//! so a run never returns a number the executor cannot stand behind.
//!
//! ```no_run
//! use netport_exec::{Tensor, onnx};
//! let plan = onnx::load("resnet18.onnx".as_ref())?;
//! let x = Tensor::f32(vec![1, 3, 224, 224], vec![0.5; 3 * 224 * 224]).unwrap();
//! let outputs = plan.run(&[("input".to_string(), x)])?;
//! println!("{} outputs", outputs.len());
//! # Ok::<(), netport_exec::ExecError>(())
//! ```

pub mod caffe2;
mod caffe2_control;
mod caffe2_rnn;
pub mod compare;
pub mod control;
mod error;
pub mod gemm;
pub mod kernels;
pub mod model;
pub mod onnx;
pub mod plan;
pub mod tensor;

pub use compare::{Comparison, compare};
pub use error::ExecError;
pub use model::{ModelKind, load_model};
pub use plan::{InputDim, InputSpec, Plan};
pub use tensor::{Data, Tensor};

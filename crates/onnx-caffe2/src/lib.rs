//! ONNX <-> Caffe2 conversion for netport, without Python: an ONNX model to
//! the Caffe2 `init_net` + `predict_net` pair by the rules of Caffe2's ONNX
//! backend (`Caffe2Backend.onnx_graph_to_caffe2_net`), extended to the
//! opsets of today's exporters, and a Caffe2 pair back to ONNX by the rules
//! of Caffe2's ONNX frontend.
//!
//! This crate joins two formats, so it is the only one that depends on both
//! `netport-onnx` and `netport-caffe2` (format crates never depend on each
//! other).
//!
//! ```no_run
//! use netport_onnx_caffe2::{ToCaffe2Options, onnx_to_caffe2};
//! let model = netport_onnx::load_model("model.onnx".as_ref())?;
//! let pair = onnx_to_caffe2(&model, &ToCaffe2Options::default())?;
//! pair.save_dir("out")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Modules: [`to_caffe2`] (ONNX -> Caffe2), [`to_onnx`] (Caffe2 -> ONNX).

mod error;
pub mod to_caffe2;
pub mod to_onnx;

pub use error::{ConvertError, UnsupportedNode};
pub use to_caffe2::{
    NEWEST_OPSET, OLDEST_OPSET, ToCaffe2Options, Written, onnx_to_caffe2, write_caffe2_dir,
};
pub use to_onnx::{ToOnnxOptions, caffe2_to_onnx, caffe2_to_onnx_streamed};

//! Loads any model the executor runs: an ONNX file, or a Caffe2 pair (a
//! folder, or a predict net with its init net), telling them apart by
//! content.

use crate::error::ExecError;
use crate::plan::Plan;
use std::path::Path;

/// Which front end built a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// An ONNX model.
    Onnx,
    /// A Caffe2 init net + predict net pair.
    Caffe2,
}

impl ModelKind {
    /// `onnx` or `caffe2`.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Onnx => "onnx",
            ModelKind::Caffe2 => "caffe2",
        }
    }
}

/// Loads `path`: a folder is a Caffe2 pair; a file is a Caffe2 predict net
/// when `init` is given (the init net), else an ONNX model.
pub fn load_model(path: &Path, init: Option<&Path>) -> Result<(Plan, ModelKind), ExecError> {
    if path.is_dir() {
        let model = netport_caffe2::Caffe2Model::load_dir(path)?;
        return Ok((crate::caffe2::build(&model)?, ModelKind::Caffe2));
    }
    if let Some(init) = init {
        let (model, _) = netport_caffe2::Caffe2Model::load_any_order(init, path)?;
        return Ok((crate::caffe2::build(&model)?, ModelKind::Caffe2));
    }
    Ok((crate::onnx::load(path)?, ModelKind::Onnx))
}

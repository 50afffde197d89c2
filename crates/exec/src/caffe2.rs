//! The Caffe2 front end (in progress).

use crate::error::ExecError;
use crate::plan::Plan;

/// Builds the plan of a Caffe2 pair.
pub fn build(_model: &netport_caffe2::Caffe2Model) -> Result<Plan, ExecError> {
    Err(ExecError::Model("Caffe2 nets are not supported yet".into()))
}

//! The integration tests of tensor, one test binary: a module per area.

mod convert;
mod hostile;
mod npy;
mod view_props;

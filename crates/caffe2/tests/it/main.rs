//! The integration tests of caffe2, one test binary: a module per area.

mod common;
mod peer_caffe2;
mod tiny_fixture;

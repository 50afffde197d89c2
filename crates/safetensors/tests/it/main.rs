//! The integration tests of safetensors, one test binary: a module per area.

mod write;

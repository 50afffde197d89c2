//! The integration tests of torch-safetensors, one test binary: a module per area.

mod diff;
mod peer_safetensors;
mod safetensors;

//! The integration tests of torch, one test binary: a module per area.

mod early;
mod fix;
mod fixtures;
mod hostile;
mod peer;
mod peer_fix;
mod peer_rewrite;
mod peer_torch_load;
mod relocate;
mod rewrite;
mod write;

//! The integration tests of graph, one test binary: a module per area.

mod browser;
mod collapse;
mod common;
mod layout;
mod pictures;
mod snapshots;

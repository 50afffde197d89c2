//! The integration tests of graph, one test binary: a module per area.

mod common;

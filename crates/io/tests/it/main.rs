//! The integration tests of io, one test binary: a module per area.

mod sniff;

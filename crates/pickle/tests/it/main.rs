//! The integration tests of pickle, one test binary: a module per area.

/// The CPython-made pickles several areas test against.
#[rustfmt::skip]
#[path = "../data/cpython_cases.rs"]
mod cpython_cases;
mod cpython;
mod limits;
mod properties;
mod scan;

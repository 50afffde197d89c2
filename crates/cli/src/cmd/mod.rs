//! One module per command. Each has a clap `Args` struct (its doc comment is
//! the command's help) and `run(&Args, &Global) -> anyhow::Result<Outcome>`:
//! the command calls the libraries, then hands typed results to `output`.

pub mod convert;
pub mod diff;
pub mod fix;
pub mod inspect;
pub mod map_location;
pub mod scan;

//! One module per command. Each has a clap `Args` struct (its doc comment is
//! the command's `--help`) and `run(&Args, &Global) -> anyhow::Result<Outcome>`.
//!
//! The pattern a new command follows (`check`, `export`, ...):
//! - the work is library calls; library errors get their file through
//!   `errors::at`, and an `Err` ends the command with exit code 2;
//! - what it found is an `exit::Outcome` (`Findings` for exit code 1);
//! - the result is printed once, through `output::emit` (or
//!   `output::Report`): a typed `#[derive(Serialize)]` document for `--json`,
//!   a text function for people; notes go to stderr through `output::note`;
//! - sizes go through `units::human_bytes`, totals by dtype through
//!   `json::ByDType`;
//! - work that writes large files runs inside a `progress::Progress`;
//! - flags and JSON fields are documented in docs/cli.md.

pub mod check;
pub mod convert;
pub mod convert_caffe2;
pub mod diff;
pub mod export;
pub mod fix;
pub mod graph;
pub mod inspect;
pub mod map_location;
pub mod ops;
pub mod run;
pub mod scan;
pub mod verify;

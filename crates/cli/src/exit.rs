//! The exit status of every command: **0** ok, **1** findings (unsafe
//! content, differences, a file that cannot be made safe), **2** error.
//! A command returns `anyhow::Result<Outcome>`; `main` turns an `Err` into
//! one `netport: error: ...` line and exit code 2 (clap does the same for
//! bad arguments).

use std::process::ExitCode;

/// How a command ended, when it did not stop at an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit code 0.
    Ok,
    /// Exit code 1: the command ran, and found what it looks for.
    Findings,
    /// Exit code 2: the command went on past errors about some of its
    /// inputs (each already reported on stderr), e.g. `scan` of many files.
    Errors,
}

impl Outcome {
    /// `Findings` when `found`, else `Ok`.
    pub fn findings_if(found: bool) -> Self {
        if found {
            Outcome::Findings
        } else {
            Outcome::Ok
        }
    }

    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Outcome::Ok => 0,
            Outcome::Findings => 1,
            Outcome::Errors => 2,
        }
    }
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> Self {
        ExitCode::from(o.code())
    }
}

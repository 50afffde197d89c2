//! The Python peer of the interop tests: the peer venv's interpreter, which
//! `cargo xtask ci` names in `NETPORT_PYTHON`.

use std::ffi::OsStr;
use std::process::Command;

/// The peer venv's python.
pub fn python() -> String {
    std::env::var("NETPORT_PYTHON").unwrap_or_else(|_| {
        panic!(
            "NETPORT_PYTHON is not set: these interop tests need the Python peers; run `cargo xtask ci`, or set NETPORT_PYTHON to the venv's python (`cargo xtask venv` prints the venv path)"
        )
    })
}

/// Runs `python -c script args…` and returns its stdout; panics with
/// `what`, its stderr and its stdout when it fails.
pub fn run_python<I, S>(what: &str, script: &str, args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let py = python();
    let out = Command::new(&py)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {py}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what}: python failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

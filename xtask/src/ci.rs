//! `cargo xtask ci`: everything CI checks, in order, stopping at the first
//! failure. `.ci/run` calls this after making sure the machine has what it
//! needs (rustfmt, clippy, python3 with venv).

use crate::util::{self, TestCounts, Timer, format_duration};
use crate::{caffe2, codegen, peers, schemas, tidy, venv};
use anyhow::{Result, bail};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Free space the interop suite needs in the temporary folder. In a whole
/// run on 2026-12-03 the free space fell by at most 8.6 GiB, other work on
/// the machine included (vit_h_14's checkpoint and export alone write
/// ~5 GB; the tests that write gigabytes take turns, see `heavy()` in
/// crates/torch-onnx's tests).
const INTEROP_TMP_BYTES: u64 = 10 << 30;

/// Refuses to start the interop suite when the temporary folder has less
/// than [`INTEROP_TMP_BYTES`] free: the tests would fail one after another
/// with "No space left on device" from inside torch, which says nothing of
/// the cause.
fn ensure_interop_disk() -> Result<()> {
    let tmp = std::env::temp_dir();
    let free = util::free_bytes(&tmp)?;
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    eprintln!("==> [ci] {} has {:.1} GiB free", tmp.display(), gib(free));
    if free < INTEROP_TMP_BYTES {
        bail!(
            "the interop tests write up to {:.0} GiB of temporary files to {} (TMPDIR), which has {:.1} GiB free; free some space or point TMPDIR elsewhere",
            gib(INTEROP_TMP_BYTES),
            tmp.display(),
            gib(free)
        );
    }
    Ok(())
}

/// Environment variables the interop tests read.
pub const PEERS_ENV: &str = "NETPORT_PEERS";
pub const PYTHON_ENV: &str = "NETPORT_PYTHON";

fn cargo(root: &Path) -> Command {
    // Under `cargo run` (the `cargo xtask` alias) CARGO names the running cargo.
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root);
    cmd
}

struct Steps {
    done: Vec<(String, Duration)>,
}

impl Steps {
    fn step(&mut self, name: &str, f: impl FnOnce() -> Result<()>) -> Result<()> {
        eprintln!("\n==> [ci] {name}");
        let timer = Timer::start(name);
        let result = f();
        let elapsed = timer.elapsed();
        self.done.push((name.to_string(), elapsed));
        match result {
            Ok(()) => {
                eprintln!("==> [ci] {name}: ok in {}", format_duration(elapsed));
                Ok(())
            }
            Err(err) => {
                self.summary();
                bail!(
                    "ci step `{name}` failed after {}: {err:#}",
                    format_duration(elapsed)
                )
            }
        }
    }

    fn summary(&self) {
        eprintln!("\n==> [ci] timings");
        let mut total = Duration::ZERO;
        for (name, d) in &self.done {
            eprintln!("  {:>8}  {name}", format_duration(*d));
            total += *d;
        }
        eprintln!("  {:>8}  total", format_duration(total));
    }
}

pub fn run(root: &Path, interop: bool) -> Result<()> {
    let mut steps = Steps { done: Vec::new() };
    steps.step("cargo fmt --all -- --check", || {
        util::run(
            cargo(root).args(["fmt", "--all", "--", "--check"]),
            "cargo fmt --check (run `cargo fmt --all` to fix)",
        )
    })?;
    steps.step(
        "cargo clippy --workspace --all-targets -- -D warnings",
        || {
            util::run(
                cargo(root).args([
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ]),
                "cargo clippy",
            )
        },
    )?;
    steps.step("cargo xtask codegen --check", || codegen::run(root, true))?;
    // Needs the peer venv's onnx: built here if missing, except with
    // --no-interop, which never builds the venv (the step is then skipped
    // when there is none; the full run always checks).
    if interop || schemas::python_at_hand(root)? {
        steps.step("cargo xtask schemas --check", || schemas::run(root, true))?;
    } else {
        eprintln!(
            "\n==> [ci] skipping cargo xtask schemas --check (--no-interop and no peer venv)"
        );
    }
    steps.step("cargo xtask tidy", || tidy::run(root))?;
    let mut counts = TestCounts::default();
    steps.step("cargo test --workspace", || {
        util::run_tests(
            cargo(root).args(["test", "--workspace"]),
            "cargo test",
            &mut counts,
        )
    })?;
    // The example is no default member: build it and run its check of the
    // file its build script converted, so the API build scripts use cannot
    // break unnoticed.
    steps.step("cargo run -p build-script-example", || {
        util::run(
            cargo(root).args(["run", "--quiet", "-p", "build-script-example"]),
            "the build-script example (examples/build-script)",
        )
    })?;
    // Tests ignored in the plain run are the interop tests run below.
    let ignored_by_plain_run = counts.ignored;
    if interop {
        let mut venv_python = None;
        steps.step("cargo xtask venv", || {
            venv_python = Some(venv::ensure(root)?.python());
            Ok(())
        })?;
        let mut corpus = None;
        steps.step("cargo xtask peers", || {
            corpus = Some(peers::ensure(root)?.0);
            Ok(())
        })?;
        // The real Caffe2 (Python 3.7 + torch 1.4.0): its own venv, and the
        // reference files made with it.
        let mut caffe2_python = None;
        steps.step("cargo xtask caffe2-venv", || {
            caffe2_python = Some(caffe2::ensure_venv(root)?);
            Ok(())
        })?;
        let caffe2_python = caffe2_python.expect("set");
        let mut caffe2_refs = None;
        steps.step("cargo xtask caffe2-refs", || {
            caffe2_refs = Some(caffe2::ensure_refs(root, &caffe2_python, false)?);
            Ok(())
        })?;
        let caffe2_refs = caffe2_refs.expect("set");
        let (python, corpus) = (venv_python.expect("set"), corpus.expect("set"));
        eprintln!("{PEERS_ENV}={}", corpus.display());
        eprintln!("{PYTHON_ENV}={}", python.display());
        eprintln!("{}={}", caffe2::PYTHON_ENV, caffe2_python.display());
        eprintln!("{}={}", caffe2::REFS_ENV, caffe2_refs.display());
        steps.step("cargo test --workspace -- --ignored (interop)", || {
            ensure_interop_disk()?;
            util::run_tests(
                cargo(root)
                    .args(["test", "--workspace", "--", "--ignored"])
                    .env(PEERS_ENV, &corpus)
                    .env(PYTHON_ENV, &python)
                    .env(caffe2::PYTHON_ENV, &caffe2_python)
                    .env(caffe2::REFS_ENV, &caffe2_refs),
                "interop tests (cargo test -- --ignored with NETPORT_PEERS set)",
                &mut counts,
            )
        })?;
    } else {
        eprintln!("\n==> [ci] skipping the interop suite (--no-interop)");
    }
    steps.summary();
    eprintln!("==> [ci] all steps passed");
    // One closing line over every cargo test run, for whoever reads the log.
    let skipped = if interop { 0 } else { ignored_by_plain_run };
    println!(
        "ci: {} passed, {} failed, {skipped} skipped",
        counts.passed, counts.failed
    );
    Ok(())
}

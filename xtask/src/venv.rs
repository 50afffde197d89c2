//! `cargo xtask venv`: the Python peer environment (torch, onnx, onnxruntime,
//! protobuf, ...) used only by tests and fixture scripts.
//!
//! The venv lives in the cache folder as `venv-<hash>`, where the hash covers
//! `testdata/peers/requirements.txt` and the version of the `python3` that
//! builds it. A stamp file is written only after the install and an import
//! check succeeded; a folder without it (an interrupted install) is rebuilt.

use crate::util::{self, ContentHash, Timer};
use anyhow::{Context, Result, bail};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const REQUIREMENTS: &str = "testdata/peers/requirements.txt";
const STAMP: &str = "netport-venv.stamp";
/// The interpreter that creates the venv.
const BOOTSTRAP_PYTHON: &str = "python3";
/// Imported after the install as a smoke test: a wheel that installs but does
/// not import (missing system library, wrong ABI) fails here, not in a test.
const IMPORT_CHECK: &str = "import torch, torchvision, onnx, onnxruntime, onnxscript, \
    google.protobuf, safetensors, numpy\n\
    for m in (torch, torchvision, onnx, onnxruntime, onnxscript, google.protobuf, safetensors, numpy):\n\
    \x20   print(f'  {m.__name__} {m.__version__}')";

pub struct Venv {
    pub dir: PathBuf,
}

impl Venv {
    pub fn python(&self) -> PathBuf {
        self.dir.join("bin").join("python")
    }
}

/// The venv folder for the current requirements, whether or not it is built.
pub fn venv_dir(root: &Path) -> Result<PathBuf> {
    let requirements =
        fs::read(root.join(REQUIREMENTS)).with_context(|| format!("reading {REQUIREMENTS}"))?;
    let version = util::output(
        Command::new(BOOTSTRAP_PYTHON).arg("--version"),
        "asking python3 for its version (is python3 installed?)",
    )?;
    let mut hash = ContentHash::new("netport venv v1");
    hash.part(&requirements).part(version.as_bytes());
    Ok(util::cache_root()?.join(format!("venv-{}", hash.short())))
}

/// Whether the venv for the current requirements is built (without building it).
pub fn is_built(root: &Path) -> Result<bool> {
    let venv = Venv {
        dir: venv_dir(root)?,
    };
    Ok(venv.dir.join(STAMP).is_file() && venv.python().is_file())
}

/// Creates the venv if needed and returns it.
pub fn ensure(root: &Path) -> Result<Venv> {
    let dir = venv_dir(root)?;
    let venv = Venv { dir: dir.clone() };
    let _lock = util::lock_folder(&dir)?;
    if dir.join(STAMP).is_file() && venv.python().is_file() {
        eprintln!("venv is up to date: {}", dir.display());
        return Ok(venv);
    }
    let timer = Timer::start("creating the venv");
    if dir.exists() {
        eprintln!(
            "removing unfinished venv (no stamp file): {}",
            dir.display()
        );
        fs::remove_dir_all(&dir)
            .with_context(|| format!("removing unfinished venv {}", dir.display()))?;
    }
    eprintln!("creating venv {}", dir.display());
    util::run(
        util::python_env(&mut Command::new(BOOTSTRAP_PYTHON))
            .args(["-m", "venv"])
            .arg(&dir),
        "`python3 -m venv` (on Debian the venv module is in the python3-venv package)",
    )?;
    let install = Timer::start("pip install");
    util::run(
        util::python_env(&mut Command::new(venv.python()))
            .args([
                "-m",
                "pip",
                "install",
                "--require-virtualenv",
                "--progress-bar",
                "off",
                "-r",
            ])
            .arg(root.join(REQUIREMENTS)),
        &format!(
            "pip install -r {REQUIREMENTS} (see pip's message above; the unfinished venv \
             is rebuilt on the next run)"
        ),
    )?;
    install.report();
    eprintln!("checking that the peers import:");
    util::run(
        util::python_env(&mut Command::new(venv.python())).args(["-c", IMPORT_CHECK]),
        "importing the installed peers",
    )?;
    let freeze = util::output(
        util::python_env(&mut Command::new(venv.python())).args(["-m", "pip", "freeze", "--all"]),
        "pip freeze",
    )?;
    let stamp = format!(
        "# written by `cargo xtask venv` after a successful install of {REQUIREMENTS}\n{freeze}\n"
    );
    fs::write(dir.join(STAMP), stamp)
        .with_context(|| format!("writing {}", dir.join(STAMP).display()))?;
    timer.report();
    Ok(venv)
}

/// `cargo xtask venv`: builds the venv if needed and prints its path.
pub fn run(root: &Path) -> Result<()> {
    let venv = ensure(root)?;
    if !venv.python().is_file() {
        bail!("venv has no interpreter at {}", venv.python().display());
    }
    println!("{}", venv.dir.display());
    Ok(())
}

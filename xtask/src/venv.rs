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
    build(
        root,
        &Recipe {
            what: "venv",
            command: "cargo xtask venv",
            dir: &dir,
            bootstrap: Path::new(BOOTSTRAP_PYTHON),
            requirements: REQUIREMENTS,
            stamp: STAMP,
            import_check: IMPORT_CHECK,
            import_what: "the installed peers",
        },
    )?;
    Ok(Venv { dir })
}

/// How to build one of the project's venvs: the one mechanism behind
/// `cargo xtask venv` and `cargo xtask caffe2-venv`.
pub struct Recipe<'a> {
    /// What it is called in messages ("venv", "caffe2 venv").
    pub what: &'a str,
    /// The xtask command that builds it, named in the stamp file.
    pub command: &'a str,
    /// The venv folder.
    pub dir: &'a Path,
    /// The interpreter that runs `-m venv`.
    pub bootstrap: &'a Path,
    /// The requirements file, relative to the repository root.
    pub requirements: &'a str,
    /// The stamp file's name inside `dir`.
    pub stamp: &'a str,
    /// Python run after the install as a smoke test.
    pub import_check: &'a str,
    /// What the import check imports, for its error message.
    pub import_what: &'a str,
}

/// Builds the venv of `recipe` unless its stamp says it is complete; returns
/// its python. A folder without the stamp (an interrupted install) is
/// removed and rebuilt. The stamp is written last, after the install and the
/// import check, and holds `pip freeze`.
pub fn build(root: &Path, recipe: &Recipe) -> Result<PathBuf> {
    let Recipe {
        what, command, dir, ..
    } = *recipe;
    let python = dir.join("bin").join("python");
    let _lock = util::lock_folder(dir)?;
    if dir.join(recipe.stamp).is_file() && python.is_file() {
        eprintln!("{what} is up to date: {}", dir.display());
        return Ok(python);
    }
    let timer = Timer::start(format!("creating the {what}"));
    if dir.exists() {
        eprintln!(
            "removing unfinished {what} (no stamp file): {}",
            dir.display()
        );
        fs::remove_dir_all(dir)
            .with_context(|| format!("removing unfinished {what} {}", dir.display()))?;
    }
    eprintln!(
        "creating {what} {} with {}",
        dir.display(),
        recipe.bootstrap.display()
    );
    util::run(
        util::python_env(&mut Command::new(recipe.bootstrap))
            .args(["-m", "venv"])
            .arg(dir),
        &format!(
            "`{} -m venv` (on Debian the venv module is in the python3-venv package)",
            recipe.bootstrap.display()
        ),
    )?;
    let requirements = recipe.requirements;
    let install = Timer::start(format!("pip install ({what})"));
    util::run(
        util::python_env(&mut Command::new(&python))
            .args([
                "-m",
                "pip",
                "install",
                "--require-virtualenv",
                "--progress-bar",
                "off",
                "-r",
            ])
            .arg(root.join(requirements)),
        &format!(
            "pip install -r {requirements} (see pip's message above; the unfinished {what} \
             is rebuilt on the next run)"
        ),
    )?;
    install.report();
    eprintln!("checking that {} import:", recipe.import_what);
    util::run(
        util::python_env(&mut Command::new(&python)).args(["-c", recipe.import_check]),
        &format!("importing {} in the {what}", recipe.import_what),
    )?;
    let freeze = util::output(
        util::python_env(&mut Command::new(&python)).args(["-m", "pip", "freeze", "--all"]),
        "pip freeze",
    )?;
    let stamp = dir.join(recipe.stamp);
    fs::write(
        &stamp,
        format!("# written by `{command}` after installing {requirements}\n{freeze}\n"),
    )
    .with_context(|| format!("writing {}", stamp.display()))?;
    timer.report();
    Ok(python)
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

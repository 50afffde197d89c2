//! The bench checkpoints: written by real torch in the peer venv into the
//! cache folder, reused while present.

use super::*;

/// The checkpoint folder for the current testdata/bench/ and venv.
pub(super) fn checkpoint_dir(root: &Path) -> Result<PathBuf> {
    util::scripts_cache_dir(root, "netport bench v1", BENCH_DIR, "bench")
}

/// Writes the checkpoints if they are not there yet; returns their folder.
pub(super) fn ensure_checkpoints(root: &Path) -> Result<(PathBuf, venv::Venv)> {
    let venv = venv::ensure(root)?;
    let dir = checkpoint_dir(root)?;
    let _lock = util::lock_folder(&dir)?;
    if dir.join(STAMP).is_file() {
        eprintln!("bench checkpoints are up to date: {}", dir.display());
        return Ok((dir, venv));
    }
    let timer = Timer::start("writing the bench checkpoints (~4.3 GiB)");
    let partial = util::fresh_partial(&dir)?;
    util::run(
        util::python_env(&mut Command::new(venv.python()))
            .current_dir(root)
            .arg(root.join(BENCH_SCRIPT))
            .arg("--out")
            .arg(&partial),
        &format!(
            "{BENCH_SCRIPT} (the partial output is left in {})",
            partial.display()
        ),
    )?;
    fs::write(
        partial.join(STAMP),
        "written by `cargo xtask bench` after testdata/bench/make_bench_checkpoints.py succeeded\n",
    )
    .with_context(|| format!("writing the stamp in {}", partial.display()))?;
    fs::rename(&partial, &dir)
        .with_context(|| format!("renaming {} to {}", partial.display(), dir.display()))?;
    timer.report();
    Ok((dir, venv))
}

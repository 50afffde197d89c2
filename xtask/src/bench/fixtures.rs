//! The bench inputs: folders written by one Python script of testdata/
//! (`SCRIPT --out DIR`, in a venv) into the cache folder, reused while their
//! stamp is there. One mechanism for every part's files.

use super::*;

/// A cache folder that one script writes.
pub(super) struct ScriptFolder {
    /// Goes into the folder's hash with every file of `folder` and the peer
    /// venv's name (bump it to make the files anew).
    pub(super) tag: String,
    /// The testdata folder that holds the script (hashed whole).
    pub(super) folder: &'static str,
    pub(super) script: &'static str,
    /// The cache folder's name before its hash.
    pub(super) prefix: &'static str,
    /// The file written last, after the script succeeded.
    pub(super) stamp: &'static str,
    /// What the script writes, for the progress line.
    pub(super) what: &'static str,
}

impl ScriptFolder {
    /// The folder for the current script, venv and tag.
    pub(super) fn dir(&self, root: &Path) -> Result<PathBuf> {
        util::scripts_cache_dir(root, &self.tag, self.folder, self.prefix)
    }

    /// Runs the script with `python` if its folder is not there yet;
    /// returns the folder.
    pub(super) fn ensure(&self, root: &Path, python: &Path) -> Result<PathBuf> {
        let dir = self.dir(root)?;
        let _lock = util::lock_folder(&dir)?;
        if dir.join(self.stamp).is_file() {
            eprintln!("{} are up to date: {}", self.what, dir.display());
            return Ok(dir);
        }
        let timer = Timer::start(format!("writing the {}", self.what));
        let partial = util::fresh_partial(&dir)?;
        util::run(
            util::python_env(&mut Command::new(python))
                .current_dir(root)
                .arg(root.join(self.script))
                .arg("--out")
                .arg(&partial),
            &format!(
                "{} (the partial output is left in {})",
                self.script,
                partial.display()
            ),
        )?;
        fs::write(
            partial.join(self.stamp),
            format!(
                "written by `cargo xtask bench` after {} succeeded\n",
                self.script
            ),
        )
        .with_context(|| format!("writing the stamp in {}", partial.display()))?;
        fs::rename(&partial, &dir)
            .with_context(|| format!("renaming {} to {}", partial.display(), dir.display()))?;
        timer.report();
        Ok(dir)
    }
}

/// The checkpoints of the inspect and rewrite parts.
fn checkpoints() -> ScriptFolder {
    ScriptFolder {
        tag: "netport bench v1".into(),
        folder: BENCH_DIR,
        script: BENCH_SCRIPT,
        prefix: "bench",
        stamp: STAMP,
        what: "bench checkpoints (~4.3 GiB)",
    }
}

/// Writes the checkpoints if they are not there yet; returns their folder.
pub(super) fn ensure_checkpoints(root: &Path) -> Result<(PathBuf, venv::Venv)> {
    let venv = venv::ensure(root)?;
    let dir = checkpoints().ensure(root, &venv.python())?;
    Ok((dir, venv))
}

//! Shared helpers: the cache folder, content hashes, folder locks and running
//! child processes with failure messages that say what failed.

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Where venvs and peer corpora live, outside the repo: `$NETPORT_CACHE`, else
/// `$XDG_CACHE_HOME/netport`, else `~/.cache/netport`.
pub fn cache_root() -> Result<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = non_empty("NETPORT_CACHE") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = non_empty("XDG_CACHE_HOME") {
        let dir = PathBuf::from(dir);
        // The XDG spec says relative values are invalid and must be ignored.
        if dir.is_absolute() {
            return Ok(dir.join("netport"));
        }
    }
    match non_empty("HOME") {
        Some(home) => Ok(PathBuf::from(home).join(".cache").join("netport")),
        None => bail!("cannot choose a cache folder: set NETPORT_CACHE (or HOME)"),
    }
}

/// Incremental SHA-256 whose parts are length-prefixed, so that ("ab", "c")
/// and ("a", "bc") hash differently.
pub struct ContentHash(Sha256);

impl ContentHash {
    pub fn new(kind: &str) -> Self {
        let mut hash = ContentHash(Sha256::new());
        hash.part(kind.as_bytes());
        hash
    }

    pub fn part(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        self
    }

    /// The first 12 hex digits: short enough for a folder name, long enough
    /// that two inputs never meet in practice.
    pub fn short(self) -> String {
        self.0.finalize()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// An exclusive lock on `<path>.lock`, held until dropped, so two concurrent
/// `<cache>/<prefix>-<hash>`: the folder for what the scripts in `folder`
/// (a repo folder) make with the current venv. The hash covers `tag`, the
/// venv's name (so the requirements and the Python version) and every
/// source file of `folder` by name and bytes (no dotfiles or editor swap
/// files), so changing any of them gives a fresh folder.
pub fn scripts_cache_dir(root: &Path, tag: &str, folder: &str, prefix: &str) -> Result<PathBuf> {
    let venv_dir = crate::venv::venv_dir(root)?;
    let mut hash = ContentHash::new(tag);
    hash.part(venv_dir.file_name().unwrap_or_default().as_encoded_bytes());
    let dir = root.join(folder);
    let mut files = Vec::new();
    for entry in fs::read_dir(&dir).with_context(|| format!("listing {folder}"))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_file() && !name.starts_with('.') && !name.ends_with(".swp") {
            files.push(name);
        }
    }
    files.sort();
    for name in files {
        let bytes =
            fs::read(dir.join(&name)).with_context(|| format!("reading {folder}/{name}"))?;
        hash.part(name.as_bytes()).part(&bytes);
    }
    Ok(cache_root()?.join(format!("{prefix}-{}", hash.short())))
}

/// `cargo xtask` runs do not build the same cache folder at once.
pub struct FolderLock {
    _file: File,
}

pub fn lock_folder(folder: &Path) -> Result<FolderLock> {
    let parent = folder.parent().expect("cache folders have a parent");
    fs::create_dir_all(parent)
        .with_context(|| format!("creating cache folder {}", parent.display()))?;
    let mut lock_path = folder.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let file = File::create(&lock_path)
        .with_context(|| format!("creating lock file {}", lock_path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            eprintln!(
                "waiting for another xtask run that holds {}",
                lock_path.display()
            );
            file.lock()
                .with_context(|| format!("locking {}", lock_path.display()))?;
        }
        Err(std::fs::TryLockError::Error(err)) => {
            return Err(err).with_context(|| format!("locking {}", lock_path.display()));
        }
    }
    Ok(FolderLock { _file: file })
}

/// Runs a command with inherited stdio; `what` names the step in errors.
pub fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let status = cmd
        .status()
        .with_context(|| format!("{what}: could not start `{program}`"))?;
    if !status.success() {
        bail!("{what} failed ({status}): {}", describe(cmd));
    }
    Ok(())
}

/// Writes generated files whose contents changed (`check == false`), or
/// fails naming every stale one (`check == true`). `what` names the files in
/// messages; `task` is the command that regenerates them.
pub fn sync_generated(
    root: &Path,
    outputs: &[(PathBuf, Vec<u8>)],
    check: bool,
    what: &str,
    task: &str,
) -> Result<()> {
    let rel = |path: &Path| {
        path.strip_prefix(root)
            .unwrap_or(path)
            .display()
            .to_string()
    };
    let mut stale = Vec::new();
    for (path, contents) in outputs {
        let current = fs::read(path).ok();
        if current.as_deref() == Some(contents.as_slice()) {
            continue;
        }
        if check {
            stale.push(rel(path));
        } else {
            fs::create_dir_all(path.parent().expect("output path has a parent"))?;
            fs::write(path, contents).with_context(|| format!("writing {}", rel(path)))?;
            println!("wrote {}", rel(path));
        }
    }
    if !stale.is_empty() {
        bail!("{what} is stale: {}; run `{task}`", stale.join(", "));
    }
    if check {
        println!("{what} is up to date");
    }
    Ok(())
}

/// Totals of the `test result:` lines of one or more `cargo test` runs.
#[derive(Default, Clone, Copy)]
pub struct TestCounts {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
}

impl TestCounts {
    /// Adds one `test result: ok. 3 passed; 0 failed; 1 ignored; ...` line.
    fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(label), Some(count)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(count) = count.parse::<u64>() else {
                continue;
            };
            match label {
                "passed" => self.passed += count,
                "failed" => self.failed += count,
                "ignored" => self.ignored += count,
                _ => {}
            }
        }
    }
}

/// Runs `cargo test ...`, passing its output through, and counts its tests.
pub fn run_tests(cmd: &mut Command, what: &str, counts: &mut TestCounts) -> Result<()> {
    use std::io::{BufRead, BufReader, Write};
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("{what}: could not start `{program}`"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut out = std::io::stdout().lock();
    for line in BufReader::new(stdout).split(b'\n') {
        let line = line.with_context(|| format!("{what}: reading test output"))?;
        let text = String::from_utf8_lossy(&line);
        counts.add_line(&text);
        out.write_all(&line)?;
        out.write_all(b"\n")?;
        out.flush()?;
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("{what} failed ({status}): {}", describe(cmd));
    }
    Ok(())
}

/// Runs a command and returns its trimmed stdout (stderr is inherited).
pub fn output(cmd: &mut Command, what: &str) -> Result<String> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("{what}: could not start `{program}`"))?;
    if !out.status.success() {
        bail!("{what} failed ({}): {}", out.status, describe(cmd));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Bytes free to an unprivileged user on the file system holding `dir`, as
/// POSIX `df -Pk` reports them (its fourth column, in KiB).
pub fn free_bytes(dir: &Path) -> Result<u64> {
    let out = output(
        Command::new("df").arg("-Pk").arg(dir),
        "df (free disk space)",
    )?;
    parse_df_available(&out)
        .map(|kib| kib * 1024)
        .with_context(|| format!("df -Pk {}: unexpected output {out:?}", dir.display()))
}

/// The `Available` column of `df -Pk`'s one data line.
fn parse_df_available(out: &str) -> Option<u64> {
    out.lines().nth(1)?.split_whitespace().nth(3)?.parse().ok()
}

/// The command line, for error messages.
pub fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|s| s.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        format!("{}m{:02}s", (secs / 60.0) as u64, secs as u64 % 60)
    }
}

/// Prints how long a task took when dropped.
pub struct Timer {
    label: String,
    start: Instant,
}

impl Timer {
    pub fn start(label: impl Into<String>) -> Self {
        Timer {
            label: label.into(),
            start: Instant::now(),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    pub fn report(&self) {
        eprintln!("{} took {}", self.label, format_duration(self.elapsed()));
    }
}

/// Environment for every Python peer process: no bytecode files in the repo,
/// fixed hash seed, no GPU even where one exists (results must not depend on
/// the machine), unbuffered output so progress shows up in CI logs.
pub fn python_env(cmd: &mut Command) -> &mut Command {
    cmd.env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONHASHSEED", "0")
        .env("PYTHONUNBUFFERED", "1")
        .env("CUDA_VISIBLE_DEVICES", "")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_NO_INPUT", "1")
}

/// The `DIR.partial` folder that a cache step writes before renaming it to
/// `DIR`, with any leftover of an interrupted run (`DIR.partial`, or a `DIR`
/// without its stamp) removed first.
pub fn fresh_partial(dir: &Path) -> Result<PathBuf> {
    let mut partial = dir.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    for stale in [partial.as_path(), dir] {
        if stale.exists() {
            eprintln!("removing unfinished {}", stale.display());
            fs::remove_dir_all(stale)
                .with_context(|| format!("removing unfinished {}", stale.display()))?;
        }
    }
    Ok(partial)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn df_available_is_its_fourth_column() {
        let out = "Filesystem     1024-blocks     Used Available Capacity Mounted on\n\
                   /dev/vda         263174212 49089796 47270720      51% /";
        assert_eq!(parse_df_available(out), Some(47270720));
        assert_eq!(
            parse_df_available("Filesystem 1024-blocks Used Available"),
            None
        );
        assert_eq!(parse_df_available("h\n/dev/vda 1 2 lots 3% /"), None);
        let here = free_bytes(Path::new(".")).expect("df of the current folder");
        assert!(here > 0);
    }

    #[test]
    fn test_result_lines_are_totalled() {
        let mut counts = TestCounts::default();
        counts.add_line(
            "test result: ok. 3 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.01s",
        );
        counts.add_line(
            "test result: FAILED. 1 passed; 4 failed; 0 ignored; 0 measured; 7 filtered out",
        );
        counts.add_line("running 3 tests");
        counts.add_line("test foo ... ok");
        assert_eq!((counts.passed, counts.failed, counts.ignored), (4, 4, 2));
    }

    #[test]
    fn content_hash_parts_are_length_prefixed() {
        let short = |parts: &[&[u8]]| {
            let mut h = ContentHash::new("t");
            for p in parts {
                h.part(p);
            }
            h.short()
        };
        assert_eq!(short(&[b"ab", b"c"]).len(), 12);
        assert_ne!(short(&[b"ab", b"c"]), short(&[b"a", b"bc"]));
        assert_eq!(short(&[b"ab", b"c"]), short(&[b"ab", b"c"]));
    }
}

//! `cargo xtask caffe2-venv` and `cargo xtask caffe2-refs`: the real Caffe2
//! (the torch 1.4.0 wheel for CPython 3.7 still ships `caffe2.python`) as
//! the oracle of the ONNX <-> Caffe2 interop tests, in a second venv apart
//! from the peer venv, and the reference files made with it.
//!
//! The venv lives in the cache folder as `caffe2-venv-<hash>`, the hash
//! covering `testdata/peers/caffe2/requirements.txt` and the version of the
//! Python 3.7 that builds it (found through pyenv). A stamp file is written
//! only after the install and an import check succeeded. The references are
//! made by `testdata/peers/caffe2/make_caffe2_refs.py` (in the Caffe2 venv)
//! and `make_today_exports.py` (torch 2.x exports of the same families, in
//! the peer venv, into `today/`) and `make_rnn_refs.py` (torch 1.4 exports of
//! nn.LSTM/GRU/RNN, in the Caffe2 venv, into `rnn/`) into
//! `caffe2-refs-<hash>` (the hash covers both venvs and the three scripts),
//! built in `.partial` and renamed into place.

use crate::util::{self, ContentHash, Timer};
use crate::venv;
use anyhow::{Context, Result, bail};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Caffe2 venv's requirements.
pub const REQUIREMENTS: &str = "testdata/peers/caffe2/requirements.txt";
const REFS_SCRIPT: &str = "testdata/peers/caffe2/make_caffe2_refs.py";
/// Today's exports of the same families, made in the peer venv (torch 2.x).
const TODAY_SCRIPT: &str = "testdata/peers/caffe2/make_today_exports.py";
/// LSTM/GRU/RNN exports and Caffe2Backend's nets for them (Caffe2 venv).
const RNN_SCRIPT: &str = "testdata/peers/caffe2/make_rnn_refs.py";
const STAMP: &str = "netport-caffe2-venv.stamp";
const REFS_STAMP: &str = "netport-caffe2-refs.stamp";
/// The Python the torch 1.4.0 wheel with Caffe2 exists for.
const PYTHON_MINOR: &str = "3.7";
/// `import onnx` first: with torch imported first, onnx.checker segfaults
/// (two copies of protobuf).
const IMPORT_CHECK: &str = "import onnx, torch, torchvision, numpy, google.protobuf\n\
    import caffe2.python.onnx.backend, caffe2.python.onnx.frontend, caffe2.python.workspace\n\
    import caffe2.python.predictor.mobile_exporter, caffe2.python.models.resnet\n\
    for m in (onnx, torch, torchvision, numpy, google.protobuf):\n\
    \x20   print('  %s %s' % (m.__name__, m.__version__))";
/// Environment variable the interop tests read for the Caffe2 venv's python.
pub const PYTHON_ENV: &str = "NETPORT_CAFFE2_PYTHON";
/// Environment variable the interop tests read for the reference folder.
pub const REFS_ENV: &str = "NETPORT_CAFFE2_REFS";

/// The Python 3.7 interpreter: `pyenv prefix 3.7.x` for the newest 3.7 that
/// pyenv has, else `~/.pyenv/versions/3.7.*`, else `python3.7` on PATH.
pub fn find_python37() -> Result<PathBuf> {
    let mut tried = Vec::new();
    let mut versions: Vec<String> = Vec::new();
    if let Ok(out) = Command::new("pyenv").arg("versions").arg("--bare").output()
        && out.status.success()
    {
        versions.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::trim)
                .filter(|v| v.starts_with("3.7."))
                .map(String::from),
        );
        tried.push("`pyenv versions` (no 3.7.x listed)".to_string());
    } else {
        tried.push("`pyenv` (not found)".to_string());
    }
    let mut candidates = Vec::new();
    versions.sort_by_key(|v| patch_number(v));
    for v in versions.iter().rev() {
        if let Ok(out) = Command::new("pyenv").args(["prefix", v]).output()
            && out.status.success()
        {
            let prefix = String::from_utf8_lossy(&out.stdout).trim().to_string();
            candidates.push(PathBuf::from(prefix).join("bin").join("python3.7"));
        }
    }
    let root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")));
    if let Some(root) = root {
        let dir = root.join("versions");
        tried.push(format!("{}/3.7.*", dir.display()));
        if let Ok(entries) = fs::read_dir(&dir) {
            let mut found: Vec<String> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("3.7."))
                .collect();
            found.sort_by_key(|v| patch_number(v));
            for v in found.iter().rev() {
                candidates.push(dir.join(v).join("bin").join("python3.7"));
            }
        }
    }
    candidates.push(PathBuf::from("python3.7"));
    tried.push("`python3.7` on PATH".to_string());
    for c in candidates {
        if let Ok(out) = Command::new(&c).arg("--version").output()
            && out.status.success()
        {
            let v = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            if v.contains(&format!("Python {PYTHON_MINOR}.")) {
                return Ok(c);
            }
        }
    }
    bail!(
        "Python {PYTHON_MINOR} is missing: the real Caffe2 (torch==1.4.0 with caffe2.python) \
         exists only for CPython {PYTHON_MINOR}. Looked in: {}. Install it with \
         `pyenv install 3.7.16` (or put python3.7 on PATH), then run `cargo xtask caffe2-venv`",
        tried.join(", ")
    )
}

fn patch_number(v: &str) -> u32 {
    v.rsplit('.')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

/// The venv folder for the current requirements and Python 3.7.
pub fn venv_dir(root: &Path, python37: &Path) -> Result<PathBuf> {
    let requirements =
        fs::read(root.join(REQUIREMENTS)).with_context(|| format!("reading {REQUIREMENTS}"))?;
    let version = util::output(
        Command::new(python37).arg("--version"),
        "asking Python 3.7 for its version",
    )?;
    let mut hash = ContentHash::new("netport caffe2 venv v1");
    hash.part(&requirements).part(version.as_bytes());
    Ok(util::cache_root()?.join(format!("caffe2-venv-{}", hash.short())))
}

/// Builds the Caffe2 venv if needed; returns its python.
pub fn ensure_venv(root: &Path) -> Result<PathBuf> {
    let python37 = find_python37()?;
    let dir = venv_dir(root, &python37)?;
    venv::build(
        root,
        &venv::Recipe {
            what: "caffe2 venv",
            command: "cargo xtask caffe2-venv",
            dir: &dir,
            bootstrap: &python37,
            requirements: REQUIREMENTS,
            stamp: STAMP,
            import_check: IMPORT_CHECK,
            import_what: "onnx, torch and caffe2.python",
        },
    )
}

/// The references folder for the current venv and generator script
/// (`full`: also the large models, vgg11_bn and vgg16).
pub fn refs_dir(root: &Path, python: &Path, full: bool) -> Result<PathBuf> {
    let venv_name = python
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .unwrap_or_default();
    let script =
        fs::read(root.join(REFS_SCRIPT)).with_context(|| format!("reading {REFS_SCRIPT}"))?;
    let today =
        fs::read(root.join(TODAY_SCRIPT)).with_context(|| format!("reading {TODAY_SCRIPT}"))?;
    let rnn = fs::read(root.join(RNN_SCRIPT)).with_context(|| format!("reading {RNN_SCRIPT}"))?;
    let peer_venv = crate::venv::venv_dir(root)?;
    let mut hash = ContentHash::new("netport caffe2 refs v1");
    hash.part(venv_name.as_encoded_bytes())
        .part(&[u8::from(full)])
        .part(&script)
        .part(peer_venv.file_name().unwrap_or_default().as_encoded_bytes())
        .part(&today)
        .part(&rnn);
    let prefix = if full {
        "caffe2-refs-full"
    } else {
        "caffe2-refs"
    };
    Ok(util::cache_root()?.join(format!("{prefix}-{}", hash.short())))
}

/// Builds the reference files if needed; returns their folder.
pub fn ensure_refs(root: &Path, python: &Path, full: bool) -> Result<PathBuf> {
    let dir = refs_dir(root, python, full)?;
    let _lock = util::lock_folder(&dir)?;
    if dir.join(REFS_STAMP).is_file() {
        eprintln!("caffe2 references are up to date: {}", dir.display());
        return Ok(dir);
    }
    let timer = Timer::start("making the caffe2 references");
    let partial = util::fresh_partial(&dir)?;
    let mut cmd = Command::new(python);
    util::python_env(&mut cmd)
        .current_dir(root)
        .arg(root.join(REFS_SCRIPT))
        .arg("--out")
        .arg(&partial);
    if full {
        cmd.arg("--full");
    }
    util::run(
        &mut cmd,
        &format!(
            "{REFS_SCRIPT} (the partial output is left in {})",
            partial.display()
        ),
    )?;
    util::run(
        util::python_env(&mut Command::new(python))
            .current_dir(root)
            .arg(root.join(RNN_SCRIPT))
            .arg("--out")
            .arg(partial.join("rnn")),
        &format!("{RNN_SCRIPT} (in the Caffe2 venv)"),
    )?;
    let peer_venv = crate::venv::ensure(root)?;
    util::run(
        util::python_env(&mut Command::new(peer_venv.python()))
            .current_dir(root)
            .arg(root.join(TODAY_SCRIPT))
            .arg("--out")
            .arg(partial.join("today")),
        &format!("{TODAY_SCRIPT} (in the peer venv)"),
    )?;
    fs::write(
        partial.join(REFS_STAMP),
        "written by `cargo xtask caffe2-refs`\n",
    )
    .with_context(|| format!("writing the stamp in {}", partial.display()))?;
    fs::rename(&partial, &dir)
        .with_context(|| format!("renaming {} to {}", partial.display(), dir.display()))?;
    timer.report();
    Ok(dir)
}

/// `cargo xtask caffe2-venv`.
pub fn run_venv(root: &Path) -> Result<()> {
    let python = ensure_venv(root)?;
    println!("{}", python.display());
    Ok(())
}

/// `cargo xtask caffe2-refs [--full] [--print-dir]`.
pub fn run_refs(root: &Path, full: bool, print_dir: bool) -> Result<()> {
    let python = ensure_venv(root)?;
    if print_dir {
        let dir = refs_dir(root, &python, full)?;
        if !dir.join(REFS_STAMP).is_file() {
            bail!(
                "the caffe2 references are not built (expected at {}); run `cargo xtask caffe2-refs`",
                dir.display()
            );
        }
        println!("{}", dir.display());
        return Ok(());
    }
    let dir = ensure_refs(root, &python, full)?;
    println!("{}", dir.display());
    Ok(())
}

/// Where `cargo xtask caffe2-node-tests` writes the counts per op.
const NODE_REPORT: &str = "docs/formats/caffe2-node-tests.md";

/// `cargo xtask caffe2-node-tests`: every ONNX node test of the peer corpus
/// whose op the converter covers, converted and run in the real Caffe2;
/// rewrites `docs/formats/caffe2-node-tests.md` with the counts per op
/// (CI runs a slice of them in the interop suite).
pub fn run_node_tests(root: &Path) -> Result<()> {
    let python = ensure_venv(root)?;
    let corpus = crate::peers::corpus_dir(root)?;
    if !crate::peers::is_built(&corpus) {
        bail!(
            "the peer corpus (with the ONNX node tests) is not built at {}; run `cargo xtask peers`",
            corpus.display()
        );
    }
    let table = std::env::temp_dir().join(format!(
        "netport-caffe2-node-tests-{}.md",
        std::process::id()
    ));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args([
            "test",
            "-p",
            "netport-onnx-caffe2",
            "--test",
            "it",
            "--",
            "--ignored",
            "node_tests",
        ])
        .env(crate::ci::PEERS_ENV, &corpus)
        .env(PYTHON_ENV, &python)
        .env("NETPORT_CAFFE2_NODE_TESTS", "all")
        .env("NETPORT_CAFFE2_NODE_REPORT", &table)
        .status()
        .context("running cargo test")?;
    let body = fs::read_to_string(&table)
        .with_context(|| format!("the node test run wrote no report ({status})"))?;
    let _ = fs::remove_file(&table);
    let doc = format!(
        "# ONNX node tests through netport's ONNX -> Caffe2 converter\n\n\
         Written by `cargo xtask caffe2-node-tests`: every ONNX node test of the peer \
         corpus (onnx's own backend tests, one node each) whose op is in the op table of \
         `netport_onnx_caffe2::to_caffe2`, converted to an init/predict pair and run in \
         the real Caffe2 workspace (torch 1.4.0, Python 3.7); *equal* means every output \
         has the expected shape and values (numpy.allclose, rtol 1e-3, atol 1e-7, the ONNX \
         backend test defaults). A test that is not converted was refused with the reason \
         listed (an element type Caffe2's kernel lacks, an attribute with no Caffe2 \
         equivalent, an input that must be constant); the test fails if a converted test \
         is not equal.\n\n{body}"
    );
    fs::write(root.join(NODE_REPORT), doc).with_context(|| format!("writing {NODE_REPORT}"))?;
    if !status.success() {
        bail!("some converted node tests differ in Caffe2 ({status}); see {NODE_REPORT}");
    }
    eprintln!("wrote {NODE_REPORT}");
    Ok(())
}
